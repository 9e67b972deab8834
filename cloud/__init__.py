"""The cloud side for a chain: the sync's receiving end on PostgreSQL (``pager-edge cloud``).

Optional (``pip install 'pager-edge[cloud]'``): the agent and the board never import this package.
See ``cloud/README.md``.
"""
