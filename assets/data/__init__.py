"""The shipped dataset subset (see README.md here for sources and licences).

A regular package, unlike ``assets`` itself, so loaders can find this folder
from ``assets.data.__file__`` both in a checkout and in an installed wheel.
"""
