"""What a spec's IR says without building anything: the summary (shapes, parameters, MACs,
memory), the feature maps a backbone offers, and the limits an untrusted spec is held to."""
