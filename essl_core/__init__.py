"""essl_core: the library behind the E-SSL book (Dangovski et al., ICLR 2022)."""

__version__ = "0.1.0"
