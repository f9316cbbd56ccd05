"""Prometheus metrics at ``/metrics``, computed from the database at scrape time.

Web and worker processes are many and short-lived; the database sees every study, so counting there gives one
consistent view without a multiprocess registry: studies by status, predictions by label and model version,
inference time and queue wait as cumulative histograms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from diagnosis.models import Prediction, Study
from diagnosis.ops.access import may_read_metrics

INFERENCE_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
QUEUE_WAIT_BUCKETS_S = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)

_Bound = TypeVar("_Bound")  # how the field counts: milliseconds (float) or a duration (timedelta)


def _histogram(
    name: str,
    doc: str,
    queryset: QuerySet[Any],
    field: str,
    buckets: tuple[_Bound, ...],
    to_seconds: Callable[[_Bound], float],
) -> HistogramMetricFamily:
    """A cumulative histogram counted by the database, one COUNT per bucket in a single query."""
    aggregates: dict[str, Any] = {
        f"le_{i}": Count("pk", filter=Q(**{f"{field}__lte": bound})) for i, bound in enumerate(buckets)
    }
    row = queryset.aggregate(total=Count("pk"), total_sum=Sum(field), **aggregates)
    cumulative = [(f"{to_seconds(bound):g}", row[f"le_{i}"]) for i, bound in enumerate(buckets)]
    cumulative.append(("+Inf", row["total"]))
    total = row["total_sum"]
    return HistogramMetricFamily(name, doc, buckets=cumulative, sum_value=to_seconds(total) if total else 0.0)


class DatabaseCollector:
    def collect(self) -> Iterator[Metric]:
        by_status = GaugeMetricFamily("pneumoweb_studies", "Studies by status.", labels=["status"])
        counts = dict(Study.objects.values_list("status").annotate(n=Count("id")))
        for status in Study.Status.values:
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status

        predictions = GaugeMetricFamily(
            "pneumoweb_predictions",
            "Predictions by label, model version and role.",
            labels=["label", "model_version", "shadow"],
        )
        for row in Prediction.objects.values("label", "model_version__version", "is_shadow").annotate(n=Count("id")):
            predictions.add_metric(
                [row["label"], row["model_version__version"], str(row["is_shadow"]).lower()], row["n"]
            )
        yield predictions

        yield _histogram(
            "pneumoweb_inference_seconds",
            "Model forward + Grad-CAM time per study.",
            Prediction.objects.filter(is_shadow=False),
            "inference_ms",
            tuple(bound * 1000 for bound in INFERENCE_BUCKETS_S),
            lambda ms: float(ms) / 1000,
        )
        waits = Study.objects.exclude(started_at=None).annotate(
            wait=ExpressionWrapper(F("started_at") - F("created_at"), output_field=DurationField())
        )
        yield _histogram(
            "pneumoweb_queue_wait_seconds",
            "Time from upload to a worker starting the study.",
            waits,
            "wait",
            tuple(timedelta(seconds=bound) for bound in QUEUE_WAIT_BUCKETS_S),
            lambda wait: wait.total_seconds(),
        )


_registry = CollectorRegistry(auto_describe=False)
_registry.register(DatabaseCollector())


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not may_read_metrics(request):
        # Counts of studies and model versions are internal: a bearer token or an allow-listed address only.
        response = HttpResponse("Forbidden: /metrics needs the metrics token.\n", status=403, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)
