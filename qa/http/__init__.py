"""The HTTP API (FastAPI) over :class:`qa.service.QAService`, its middleware and ``qa serve``."""
