"""SIP (RFC 3261) user-agent server and SIPREC (RFC 7866) recording server: messages, SDP, transactions."""
