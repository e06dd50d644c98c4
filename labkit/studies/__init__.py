"""labkit.studies: one module per notebook's experiment, on top of the concept modules (which never import from
here). A study returns tidy pandas tables — one row per run, mean ± std summaries, computed verdicts — and is what
a notebook calls.

    recipe                    the shared CLIP recipe: profiles, data source, ``train_clip`` (notebooks 01, 03, 04)
    sweep                     grid × seeds → DataFrame, mean ± std, paired differences (every multi-seed study)
    grl_sweep                 seed 000's λ sweep of the GRL gap reducer (notebook 04)
    semantic_neighbourhoods   seed 001's Tables 1, 3 and 4 (notebook 06)
    train_cli                 the command-line entry point: one recipe, one run, one process or many (torchrun)
"""
