"""Call adapter (SIP trunk/PBX, SIPREC, WebSocket media): arrives with the telephony issue.

Until then recordings reach the platform by `hotline import` or `POST /api/v1/recordings`."""
