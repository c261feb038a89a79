"""The HTTP edge: thin routes that parse, call a use case and shape the answer."""
