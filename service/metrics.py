"""Every Prometheus metric of the service, in one place.

Names follow the Prometheus conventions (base units, ``_seconds``, ``_total``). Each app gets
its own :class:`~prometheus_client.CollectorRegistry`, so tests can build several apps.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
AUDIO_DURATION_BUCKETS_S = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0)
UNMATCHED_ROUTE = "unmatched"


class ServiceMetrics:
    """The metric objects of one app, registered in ``self.registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests_total = Counter(
            "ser_http_requests_total",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_duration_seconds = Histogram(
            "ser_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["route", "method"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.requests_in_flight = Gauge(
            "ser_http_requests_in_flight",
            "Requests being served now",
            registry=self.registry,
        )
        self.stage_duration_seconds = Histogram(
            "ser_stage_duration_seconds",
            "Pipeline stage time (decode, resample, inference, ...)",
            ["stage"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.audio_duration_seconds = Histogram(
            "ser_audio_duration_seconds",
            "Duration of accepted uploads",
            buckets=AUDIO_DURATION_BUCKETS_S,
            registry=self.registry,
        )
        self.predictions_total = Counter(
            "ser_predictions_total",
            "Predictions by model and top label",
            ["model", "version", "label"],
            registry=self.registry,
        )
        self.input_errors_total = Counter(
            "ser_input_errors_total",
            "Refused requests by stable error code",
            ["code"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "ser_model_info",
            "Loaded models (value 1; 'default' marks the default)",
            ["name", "version", "sha256", "default"],
            registry=self.registry,
        )

    def observe_stages(self, timing_ms: dict[str, float]) -> None:
        """Record one pipeline run's stage timings (milliseconds) in seconds."""
        for stage, duration_ms in timing_ms.items():
            self.stage_duration_seconds.labels(stage=stage).observe(duration_ms / 1000.0)
