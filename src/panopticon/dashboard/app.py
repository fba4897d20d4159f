"""The Streamlit app of ``panopticon dashboard``: pages Explore, Runs and Compare and sweeps.

Started by :mod:`panopticon.dashboard.server` (the run store comes in the environment
variable :data:`panopticon.dashboard.STORE_ENV`). Each page is a small script that calls its
function in :mod:`panopticon.dashboard.pages`.
"""

from pathlib import Path

import streamlit as st

from panopticon.dashboard.pages import store

HERE = Path(__file__).parent

st.set_page_config(page_title="panopticon", layout="wide")
page = st.navigation([
    st.Page(HERE / "page_explore.py", title="Explore", url_path="explore", default=True),
    st.Page(HERE / "page_runs.py", title="Runs", url_path="runs"),
    st.Page(HERE / "page_compare.py", title="Compare and sweeps", url_path="compare"),
])
st.sidebar.caption(f"store: {store()}/ (read only; Explore adds runs to it)")
page.run()
