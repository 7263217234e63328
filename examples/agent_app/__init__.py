"""An agent app: a pydantic-ai agent as a workflow step, in a script, FastAPI and Jupyter.

The agent (``agent.py``) answers "how many of ITEM are in stock?" with a structured
answer. Its model is a pydantic-ai ``FunctionModel``, so it runs offline: it calls the
agent's one tool, ``stock_level``, then answers from what the tool returned. The tool is
plain sync code that needs an async HTTP client: it calls ``ab.run_sync`` on an
``httpx.AsyncClient`` request to a small stock service on 127.0.0.1 (``stock.py``), and
that call comes back to the loop the run is on. The same workflow (``workflow.yaml``)
runs from ``script.py``, from ``server.py``'s ``def`` and ``async def`` routes, and from
``notebook.ipynb``.
"""
