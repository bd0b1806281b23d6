"""File formats: each reader turns a file into napari LayerData tuples ``(data, kwargs, layer_type)``."""
