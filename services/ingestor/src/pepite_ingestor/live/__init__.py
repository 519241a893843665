"""Live platform adapters: HTTP endpoints and gateway clients hosted by the ingestor service.

Each adapter turns what a platform pushes into contract events and hands them to an
:class:`~pepite_ingestor.live.sink.EventSink`; a :class:`~pepite_ingestor.live.sink.ReplayGuard`
makes sure a delivery the platform retries, or an attacker replays, is published once.
"""
