"""Live transcripts of calls in progress: the event hub, the live process's publisher, the API's ingest socket
and the staff browsers' WebSockets (with screen pop)."""
