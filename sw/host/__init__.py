"""cssnn.sw.host: talking to an accelerator (protocol codec and client, serial transport, the host
:class:`~cssnn.sw.host.accelerator.Accelerator` API, run-and-compare with the golden model)."""
