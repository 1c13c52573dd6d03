"""tickstep: a serverless, event-driven crypto trading pipeline that also runs offline."""

__version__ = "0.1.0"
