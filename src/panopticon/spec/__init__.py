"""The specification layer: what a scenario or a policy file may say, how it is read, and
every check it must pass before a run starts. Nothing here imports the runtime (engine,
behaviour, sensors, sanctions, policy runtime, society, kernels' users); the runtime imports
from here, never the other way round (tests/test_spec_layer.py keeps it so).

Layout, each module importing only those above it:

- :mod:`panopticon.spec.types`: building blocks of every model: ``Strict`` (frozen, unknown
  keys refused), numbers (``Probability``, ``NonNegative``, ``MAX_NUMBER``) and the
  distributions (``Normal``, ``LogNormal``, ``Uniform``, ``Table``, ``ByCategory``).
- :mod:`panopticon.spec.files`: reading YAML with the position of every key, turning pydantic's
  errors into problems at file:line:col with "did you mean" (``read_yaml``, ``validate``,
  ``problems_from``, ``did_you_mean``).
- :mod:`panopticon.spec.policy`: the policy models (``PolicySpec``, ``MILLI``, ``MAX_POINTS``).
- :mod:`panopticon.spec.scenario`: the scenario's section models (``SocietySpec``,
  ``BehaviourSpec``, ``SourceSpec``, ``OpportunitySpec``, ``GovernanceSpec``, ``RunSpec``),
  their constants and the limits the run supports (``MAX_RATE``, ``MAX_TRIES``,
  ``MAX_PHANTOMS``).
- :mod:`panopticon.spec.sampling`: the distributions' samplers (inverse CDFs), shared by the
  checks and the population.
- :mod:`panopticon.spec.conditions`: the columns and functions conditions may name, and
  compiling a policy's conditions (``compile_policy_conditions``, ``PolicyError``).
- :mod:`panopticon.spec.checks`: the checks pydantic cannot do (names that must exist,
  conditions that must compile, limits the run would refuse), each problem a
  ``(key path, message)``.
- :mod:`panopticon.spec.loader`: the document (``ScenarioSpec``, ``SCHEMA_VERSION``) and
  loading it: files, presets, policies by name or reference (``use``/``set``),
  ``load_scenario``, ``load_preset``, ``scenario_from_data``, ``assign``.

The older import paths stay as thin re-exports: :mod:`panopticon.scenario` (models, checks
and loader), :mod:`panopticon.specfile`, :mod:`panopticon.policy.schema`,
:mod:`panopticon.society.sampling`. This package itself re-exports the building blocks of
:mod:`panopticon.spec.types`, as the module ``panopticon.spec`` did.
"""

from panopticon.spec.types import (
    MAX_NUMBER,
    MIN_MASS,
    ByCategory,
    Constant,
    Distribution,
    LogNormal,
    NonNegative,
    Normal,
    Number,
    NumericTable,
    PerCategory,
    Probability,
    Strict,
    Table,
    Uniform,
)

__all__ = ["MAX_NUMBER", "MIN_MASS", "ByCategory", "Constant", "Distribution", "LogNormal",
           "NonNegative", "Normal", "Number", "NumericTable", "PerCategory", "Probability",
           "Strict", "Table", "Uniform"]
