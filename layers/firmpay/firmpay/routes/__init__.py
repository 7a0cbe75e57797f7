"""The API's routes, one Powertools ``Router`` per resource, included by the functions' handlers.

A handler (``functions/<name>/app.py``) builds its resolver with ``firmpay.api.make_resolver()`` and
``include_router``s the routers it serves; each route is a thin call into one use case.
"""
