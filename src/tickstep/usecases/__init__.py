"""The use cases, one module per pipeline step: :mod:`.ingest`, :mod:`.signal`, :mod:`.risk`,
:mod:`.execute`, :mod:`.reconcile` and :mod:`.control`.

Pure orchestration over the ports (:mod:`tickstep.ports`): no boto3, no environment, no clock
read (``now_ms`` is passed in), so the Lambda handlers, the offline runtime, ``tickstep run``
and the unit tests run the same code.
"""
