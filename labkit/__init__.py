"""labkit: cross-modal contrastive learning and the modality gap, as a teaching and analysis kit.

Modules, one concept each:
    labkit.data      the embedded procedural world and real-format loaders (COCO, Flickr)
    labkit.models    open_clip two-tower models from JSON configs
    labkit.losses    symmetric InfoNCE and the loss-term seam
    labkit.train     one readable training loop
    labkit.evaluate  encode a dataset and measure it
    labkit.metrics   modality gap, silhouette, retrieval recall
    labkit.viz       PCA / t-SNE / UMAP views of both modalities
    labkit.runner    run every notebook headlessly with papermill
"""

__version__ = "0.1.0"
