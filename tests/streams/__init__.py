"""Streaming ingest: the NATS JetStream source and the consume loop."""
