"""The synthetic society: population (struct of arrays) and tie layers (CSR)."""

from panopticon.society.population import Population, Society, generate_society
from panopticon.society.ties import CSR

__all__ = ["CSR", "Population", "Society", "generate_society"]
