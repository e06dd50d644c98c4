"""labkit: cross-modal contrastive learning and the modality gap, as a teaching and analysis kit.

One home per concept; the notebooks' experiment recipes sit on top, in ``labkit.studies``:

    labkit.data        the embedded procedural world, real-format loaders (COCO, Karpathy/Flickr), collation, words
    labkit.models      the open_clip factory and JSON configs; seed 001's two-stream CNN + GRU
    labkit.losses      contrastive (InfoNCE, Features, Objective, gathering); modality (GRL + classifier, seed 000);
                       metric learning (hinge family + neighbour terms, seed 001)
    labkit.metrics     the gap family, retrieval (R@K, N-way), neighbourhood preservation
    labkit.neighbours  text spaces Ω and the neighbour function Ψ (seed 001 eq. 5)
    labkit.train       one readable training loop
    labkit.evaluate    encode a dataset and measure it
    labkit.viz, labkit.gallery   projections and curves; image grids and retrieval examples
    labkit.io, labkit.report     atomic files and checkpoints; claims.json, claims.md and the README's results
    labkit.runner      every notebook headless with papermill into runs/<name>/
    labkit.studies     one module per notebook's experiment (recipe, sweep helper, GRL λ sweep, seed-001 tables, …)

Nothing below ``labkit.studies`` imports from it.
"""

__version__ = "0.1.0"
