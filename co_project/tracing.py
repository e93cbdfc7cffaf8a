"""OpenTelemetry traces, on only when an OTLP endpoint is configured.

`OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) turns tracing on. Each
process that serves requests or runs tasks then installs, once, a tracer provider that exports
over OTLP/HTTP in batches, and the official instrumentations:

- Django (the web process only): one server span per request, named after its URL pattern. It
  is a middleware, so it must be in `MIDDLEWARE` before a handler loads the chain: co_project/
  asgi.py (and wsgi.py, for runserver) installs tracing before it builds its handler, in each
  server process (gunicorn loads the app after the fork).
- Celery: a publish span where a task is queued and a run span in the worker, the trace context
  travelling in the task's headers. A submission is queued on commit, inside its request, so
  its evaluation joins the request's trace (eager mode: the run span is the request's child).
- psycopg (PostgreSQL) and sqlite3 (the single-machine mode): one span per statement, its SQL
  text with placeholders — never the parameter values, which carry answers and hidden tests.
- httpx: one span per outbound call (eval service, problem bank, LLM), without bodies.

A streamed answer (the tutor stream) is produced after the middleware returned it, when the
request span has ended: its production gets a `stream` span, the request span's child, and the
context of that span while it runs, so the LLM call and the turn's final write join the trace.

Without the variable nothing here imports opentelemetry: a process pays one environment lookup.
Everything else is the SDK's own standard variables (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
OTEL_TRACES_SAMPLER and _ARG, OTEL_EXPORTER_OTLP_HEADERS and _TIMEOUT, OTEL_BSP_*, OTEL_SDK_DISABLED).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# Span attributes that carry the request target: a tutor stream token lives in its query string.
_URL_ATTRIBUTES = ("http.url", "url.full", "http.target", "url.query")

_state: dict[str, Any] = {}


def tracing_configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def tracing_install(service_name: str, *, web: bool = False, span_exporter: SpanExporter | None = None) -> bool:
    """Trace this process when an OTLP endpoint is configured (or, in tests, into `span_exporter`).
    `service_name` is the default for OTEL_SERVICE_NAME; `web` adds the Django request spans.
    Idempotent: one provider per process, whichever of its entry points calls first."""
    if _state or (span_exporter is None and not tracing_configured()):
        return bool(_state)
    from opentelemetry import trace
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)
    if span_exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)  # once per process; tests pass their provider instead
    else:
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    instrumentors: list[Any] = [
        CeleryInstrumentor(),
        PsycopgInstrumentor(),  # capture_parameters stays off: no values in db.statement
        SQLite3Instrumentor(),
        HTTPXClientInstrumentor(),
    ]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=provider)
    if web:
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        requests = DjangoInstrumentor()
        requests.instrument(tracer_provider=provider, request_hook=_request_span_redacted, response_hook=_stream_traced)
        instrumentors.append(requests)
    _state.update(provider=provider, instrumentors=instrumentors, tracer=provider.get_tracer(__name__))
    return True


def tracing_uninstall() -> None:
    """Undo `tracing_install` (tests), flushing what is buffered."""
    if not _state:
        return
    for instrumentor in _state["instrumentors"]:
        instrumentor.uninstrument()
    _state["provider"].shutdown()
    _state.clear()


def tracing_flush() -> None:
    """Export what is buffered now: a Celery pool process ends without running atexit hooks."""
    if _state:
        _state["provider"].force_flush()


def _request_span_redacted(span: Any, request: Any) -> None:
    """The request span's URL as the access log shows it (co_project/access_log.py): no tutor
    stream token. The instrumentation sets these attributes before it calls this hook."""
    from co_project.access_log import access_path_redacted

    attributes = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        value = attributes.get(name)
        if not isinstance(value, str):
            continue
        if name == "url.query":
            redacted = access_path_redacted(f"{request.path}?{value}").partition("?")[2]
        else:
            parts = urlsplit(value)
            target = access_path_redacted(f"{parts.path}?{parts.query}" if parts.query else parts.path)
            redacted = urlunsplit((parts.scheme, parts.netloc, *target.partition("?")[::2], ""))
        if redacted != value:
            span.set_attribute(name, redacted)


def _stream_traced(span: Any, request: Any, response: Any) -> None:
    """Response hook: an async streamed body runs inside a `stream` span under the request span."""
    if getattr(response, "streaming", False) and getattr(response, "is_async", False):
        from opentelemetry import trace

        parent = trace.set_span_in_context(span)
        stream_span = _state["tracer"].start_span("stream", context=parent)
        response.streaming_content = _traced_chunks(
            response.streaming_content, trace.set_span_in_context(stream_span), stream_span
        )


async def _traced_chunks(chunks: Any, context: Any, span: Any) -> Any:
    """The body's chunks, each produced with the stream span's context attached (and detached
    again before the chunk goes out: the server's task runs other code between chunks)."""
    from opentelemetry.context import attach, detach

    iterator = aiter(chunks)
    try:
        while True:
            token = attach(context)
            try:
                chunk = await anext(iterator)
            except StopAsyncIteration:
                break
            finally:
                detach(token)
            yield chunk
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            token = attach(context)
            try:
                await close()
            finally:
                detach(token)
        span.end()
