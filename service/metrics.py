"""Every Prometheus metric of the service, in one place.

Names follow the Prometheus conventions (base units, ``_seconds``, ``_total``). Each app gets
its own :class:`~prometheus_client.CollectorRegistry`, so tests can build several apps.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from service.inference.batcher import BatchObservation

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
AUDIO_DURATION_BUCKETS_S = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0)
BATCH_SEGMENTS_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 32, 64)
QUEUE_WAIT_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
UNMATCHED_ROUTE = "unmatched"
MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_log = logging.getLogger(__name__)


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
            multiprocess_mode="livesum",
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
            multiprocess_mode="max",
        )
        self.admission = AdmissionMetrics(self.registry)
        self.inference = InferenceMetrics(self.registry)
        self.scrape_time_collectors: list[Collector] = []

    def register_collector(self, collector: Collector) -> None:
        """Add a collector computed at scrape time (kept out of the multi-process files)."""
        self.registry.register(collector)
        self.scrape_time_collectors.append(collector)

    def observe_prediction(
        self,
        timing_ms: dict[str, float],
        audio_duration_s: float,
        model_key: tuple[str, str],
        label: str,
    ) -> None:
        """Record one answered upload: stage times, audio duration and the top label.

        ``model_key`` is ``(name, version)``.
        """
        self.observe_stages(timing_ms)
        self.audio_duration_seconds.observe(audio_duration_s)
        name, version = model_key
        self.predictions_total.labels(model=name, version=version, label=label).inc()

    def observe_stages(self, timing_ms: dict[str, float]) -> None:
        """Record one pipeline run's stage timings (milliseconds) in seconds."""
        for stage, duration_ms in timing_ms.items():
            self.stage_duration_seconds.labels(stage=stage).observe(duration_ms / 1000.0)


class AdmissionMetrics:
    """The concurrency limit of the analysis routes (``service/api/admission.py``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.in_flight = Gauge(
            "ser_admission_in_flight",
            "Analysis requests holding a slot (at most SER_MAX_CONCURRENT_REQUESTS)",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.queued = Gauge(
            "ser_admission_queued",
            "Analysis requests waiting for a slot (at most SER_MAX_QUEUED_REQUESTS)",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.rejected_total = Counter(
            "ser_admission_rejected_total",
            "Analysis requests refused with 503 overloaded, by reason (queue_full, queue_timeout)",
            ["reason"],
            registry=registry,
        )
        self.timeouts_total = Counter(
            "ser_request_timeouts_total",
            "Admitted analysis requests answered 503 request_timeout (SER_REQUEST_TIMEOUT_S)",
            registry=registry,
        )


class InferenceMetrics:
    """The micro-batcher's model calls (``service/inference/batcher.py``), by model."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.batch_segments = Histogram(
            "ser_model_batch_segments",
            "Segments (rows) per model call of the micro-batcher",
            ["model", "version"],
            buckets=BATCH_SEGMENTS_BUCKETS,
            registry=registry,
        )
        self.queue_wait_seconds = Histogram(
            "ser_model_queue_wait_seconds",
            "Time a request's segments waited in the micro-batcher before their model call",
            ["model", "version"],
            buckets=QUEUE_WAIT_BUCKETS_S,
            registry=registry,
        )
        self.run_duration_seconds = Histogram(
            "ser_model_run_duration_seconds",
            "Time of one model call of the micro-batcher (the whole batch)",
            ["model", "version"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )

    def observer(self, model_key: tuple[str, str]) -> Callable[[BatchObservation], None]:
        """A batch observer for the model ``(name, version)``."""
        name, version = model_key
        segments = self.batch_segments.labels(model=name, version=version)
        waits = self.queue_wait_seconds.labels(model=name, version=version)
        runs = self.run_duration_seconds.labels(model=name, version=version)

        def observe(observation: BatchObservation) -> None:
            segments.observe(observation.segments)
            runs.observe(observation.run_s)
            for wait_s in observation.queue_wait_s:
                waits.observe(wait_s)

        return observe


def multiprocess_dir() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` when metrics are shared by several worker processes."""
    return os.environ.get(MULTIPROC_DIR_VARIABLE) or None


def exposition_registry(metrics: ServiceMetrics) -> CollectorRegistry:
    """What ``/metrics`` exposes: this process's registry, or with several uvicorn workers
    (``PROMETHEUS_MULTIPROC_DIR`` set) the values of every worker, summed by
    ``MultiProcessCollector``, plus this app's own collectors (the job queue's figures)."""
    directory = multiprocess_dir()
    if directory is None:
        return metrics.registry
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    for collector in metrics.scrape_time_collectors:
        registry.register(collector)
    return registry


@dataclass(frozen=True)
class HistogramSnapshot:
    """Cumulative ``(upper bound, count)`` pairs ending with ``("+Inf", count)``, and the sum."""

    buckets: Sequence[tuple[str, int]]
    sum_s: float


@dataclass(frozen=True)
class JobQueueSnapshot:
    """The batch-job figures, read from Redis at scrape time (shared by every API and worker)."""

    queue_depth: int
    workers: int
    jobs_by_state: dict[str, int]
    files_succeeded: int
    files_failed: int
    files_retried: int
    file_duration: HistogramSnapshot
    job_duration: HistogramSnapshot


class JobQueueCollector(Collector):
    """Job metrics computed when ``/metrics`` is scraped: ``snapshot`` gives ``None`` when the
    queue cannot be read, and only ``ser_job_queue_up 0`` is exposed then.

    The figures are cluster-wide (they live in Redis), so every API replica reports the same
    values: aggregate them with ``max``, not ``sum``.
    """

    def __init__(self, snapshot: Callable[[], JobQueueSnapshot | None]) -> None:
        self._snapshot = snapshot

    def describe(self) -> list[Metric]:
        return []  # no collection at registration time (Redis may be down then)

    def collect(self) -> Iterator[Metric]:
        snapshot = self._safe_snapshot()
        up = GaugeMetricFamily("ser_job_queue_up", "1 when the job queue answered this scrape")
        up.add_metric([], 0.0 if snapshot is None else 1.0)
        yield up
        if snapshot is not None:
            yield from _job_metrics(snapshot)

    def _safe_snapshot(self) -> JobQueueSnapshot | None:
        try:
            return self._snapshot()
        except Exception:
            _log.warning("job queue metrics unavailable", exc_info=True)
            return None


def _job_metrics(snapshot: JobQueueSnapshot) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "ser_job_queue_depth", "Files waiting on the queue", value=snapshot.queue_depth
    )
    yield GaugeMetricFamily("ser_job_workers", "Workers registered", value=snapshot.workers)
    by_state = GaugeMetricFamily("ser_jobs", "Jobs kept in Redis, by state", labels=["state"])
    for state, count in snapshot.jobs_by_state.items():
        by_state.add_metric([state], count)
    yield by_state
    files = CounterMetricFamily("ser_job_files", "Files of jobs by outcome", labels=["outcome"])
    files.add_metric(["succeeded"], snapshot.files_succeeded)
    files.add_metric(["failed"], snapshot.files_failed)
    yield files
    yield CounterMetricFamily(
        "ser_job_file_retries",
        "Files started again after a worker crash, a time limit or a server fault",
        value=snapshot.files_retried,
    )
    yield _histogram(
        "ser_job_duration_seconds", "Submission to end of finished jobs", snapshot.job_duration
    )
    yield _histogram(
        "ser_job_file_duration_seconds", "Worker time per file of a job", snapshot.file_duration
    )


def _histogram(name: str, documentation: str, snapshot: HistogramSnapshot) -> Metric:
    return HistogramMetricFamily(
        name, documentation, buckets=list(snapshot.buckets), sum_value=snapshot.sum_s
    )
