#!/usr/bin/env python3
"""Sends a fixed set of metrics with the OpenTelemetry Python SDK, as a training script would.

Used by the OTLP receiver tests: they start a receiver on loopback and assert the exact series
that come out. Usage:

    otlp_sender.py --protocol grpc|http --endpoint 127.0.0.1:PORT [--delta] [--rounds N] [--no-rank]
                   [--ca CA.pem [--cert CLIENT.pem --key CLIENT-KEY.pem]]

With --ca the receiver is reached over TLS and its certificate checked against CA.pem; --cert and
--key present a client certificate (for a receiver that requires one).

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


def read(path):
    with open(path, "rb") as f:
        return f.read()


def exporter(protocol, endpoint, delta, ca=None, cert=None, key=None):
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

        if ca:
            import grpc

            credentials = grpc.ssl_channel_credentials(
                root_certificates=read(ca),
                private_key=read(key) if key else None,
                certificate_chain=read(cert) if cert else None,
            )
            return OTLPMetricExporter(
                endpoint=f"https://{endpoint}",
                insecure=False,
                credentials=credentials,
                compression=Compression.Gzip,
                timeout=5,
                preferred_temporality=temporality,
            )
        return OTLPMetricExporter(
            endpoint=f"http://{endpoint}",
            insecure=True,
            compression=Compression.Gzip,
            timeout=5,
            preferred_temporality=temporality,
        )
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    if ca:
        return OTLPMetricExporter(
            endpoint=f"https://{endpoint}/v1/metrics",
            certificate_file=ca,
            client_certificate_file=cert,
            client_key_file=key,
            compression=Compression.Gzip,
            timeout=5,
            preferred_temporality=temporality,
        )
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
    parser.add_argument("--ca", help="PEM CA certificate: reach the receiver over TLS and check it")
    parser.add_argument("--cert", help="PEM client certificate, with --ca and --key")
    parser.add_argument("--key", help="PEM client key, with --cert")
    args = parser.parse_args()
    if (args.cert or args.key) and not (args.ca and args.cert and args.key):
        parser.error("--cert and --key go together, with --ca")

    inner = exporter(args.protocol, args.endpoint, args.delta, args.ca, args.cert, args.key)
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
