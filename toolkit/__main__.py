"""``python -m toolkit``: see :mod:`toolkit.cli`. Pins PyTorch's CPU kernels before anything
imports torch (:mod:`toolkit.numerics`)."""

from toolkit.numerics import pin_cpu_kernels

pin_cpu_kernels()

from toolkit.cli import main  # noqa: E402  (after the pin, on purpose)

if __name__ == "__main__":
    main()
