"""Dock widgets. Each module is thin: gather parameters, call :mod:`napari_cryomat.core`, show results."""
