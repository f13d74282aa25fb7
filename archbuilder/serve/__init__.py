"""``archbuild serve``: the interactive page of a spec, redrawn in the open browser on every save.

An ASGI app (:mod:`.app`, Starlette) served by uvicorn on 127.0.0.1; file events from
watchfiles (:mod:`.watch`) start a rebuild in a worker process (:mod:`.worker`), whose result
the page fetches when the server-sent event stream says so (:mod:`.live`). Every dependency
comes with the ``serve`` extra: without it, importing :mod:`.server` raises
:class:`~archbuilder.core.extras.MissingExtra` naming it. Nothing here imports torch.
"""
