#!/usr/bin/env python3
"""Sends a fixed set of metrics with the OpenTelemetry Python SDK, as a training script would.

Used by the OTLP receiver tests: they start a receiver on loopback and assert the exact series
that come out. Usage:

    otlp_sender.py --protocol grpc|http --endpoint 127.0.0.1:PORT [--delta] [--rounds N] [--no-rank]

Each round records, then flushes (one export per round); with --no-rank there is no rank
attribute:
  train.tokens        counter        {token}  +1000 (rank=0) per round
  train.queue.depth   up-down counter         +5 then -2 per round (rank=0)
  train.loss          gauge                   2.5 / round number (rank=0)
  train.step.duration histogram      s        0.05, 0.3, 0.3, 2.0 per round, bounds 0.1, 0.5, 1
Exits non-zero when an export fails.
"""

import argparse
import sys

from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource


def exporter(protocol, endpoint, delta):
    temporality = {}
    if delta:
        temporality = {
            Counter: AggregationTemporality.DELTA,
            UpDownCounter: AggregationTemporality.DELTA,
            Histogram: AggregationTemporality.DELTA,
            ObservableCounter: AggregationTemporality.DELTA,
            ObservableUpDownCounter: AggregationTemporality.DELTA,
        }
    if protocol == "grpc":
        from grpc import Compression
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(
            endpoint=f"http://{endpoint}",
            insecure=True,
            compression=Compression.Gzip,
            timeout=5,
            preferred_temporality=temporality,
        )
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(
        endpoint=f"http://{endpoint}/v1/metrics",
        compression=Compression.Gzip,
        timeout=5,
        preferred_temporality=temporality,
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--endpoint", required=True, help="host:port of the receiver")
    parser.add_argument("--delta", action="store_true", help="export sums and histograms as deltas")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--no-rank", action="store_true", help="record without the rank attribute (a script unaware of Slurm)"
    )
    args = parser.parse_args()

    inner = exporter(args.protocol, args.endpoint, args.delta)
    # force_flush reports success even when the export failed, so results are recorded here.
    results = []
    export = inner.export

    def checked_export(*a, **kw):
        result = export(*a, **kw)
        results.append(result)
        return result

    inner.export = checked_export
    reader = PeriodicExportingMetricReader(
        inner,
        # Exports happen on force_flush only.
        export_interval_millis=3_600_000,
    )
    resource = Resource.create({"service.name": "trainer", "service.instance.id": "node-1"})
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("train", "1.0")
    tokens = meter.create_counter("train.tokens", unit="{token}", description="Tokens processed.")
    depth = meter.create_up_down_counter("train.queue.depth", description="Batches waiting.")
    loss = meter.create_gauge("train.loss", description="Training loss.")
    step = meter.create_histogram(
        "train.step.duration",
        unit="s",
        description="Step time.",
        explicit_bucket_boundaries_advisory=[0.1, 0.5, 1.0],
    )
    attrs = {} if args.no_rank else {"rank": "0"}
    for n in range(1, args.rounds + 1):
        tokens.add(1000, attrs)
        depth.add(5, attrs)
        depth.add(-2, attrs)
        loss.set(2.5 / n, attrs)
        for v in (0.05, 0.3, 0.3, 2.0):
            step.record(v, attrs)
        provider.force_flush(timeout_millis=10_000)
    provider.shutdown()
    if len(results) < args.rounds or any(r != MetricExportResult.SUCCESS for r in results):
        print("export failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
