"""cssnn.sw.frontends: what users bring in (float ANNs, PyTorch models, datasets) and the converter and trainer
that turn it into a spiking network of :mod:`cssnn.sw.spec`."""
