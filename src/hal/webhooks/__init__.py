"""Webhooks, a capability nothing else calls: endpoints and their administration routes, URL
checks, the delivery worker (fan-out, attempts, retries) and the rules of the Standard Webhooks
specification, together (README "Webhooks")."""
