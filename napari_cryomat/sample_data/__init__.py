"""napari sample-data providers (File > Open Sample > napari-cryomat). Each returns LayerData tuples."""
