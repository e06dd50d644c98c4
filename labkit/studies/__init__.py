"""labkit.studies: one module per notebook's experiment, on top of the concept modules (which never import from
here). A study returns tidy pandas tables — one row per run, mean ± std summaries, computed verdicts — and is what
a notebook calls.

    recipe                    the shared CLIP recipe: profiles, data source, ``train_clip`` (notebooks 01, 03, 04)
    sweep                     grid × seeds → DataFrame, mean ± std, paired differences (every multi-seed study)
    gap_physics               where the gap comes from: temperature, width, init, loss landscape, imbalance (02)
    grl_sweep                 seed 000's λ sweep of the GRL gap reducer and the other gap closers (notebook 04)
    audio_gap                 seed 000's audio–text half: CLAP on the sound world, gap vs image, λ sweep (05)
    semantic_neighbourhoods   seed 001's Tables 1, 3 and 4 (notebook 06)
    sampling                  seed 003's batch / queue / rerank negatives, Tables 2–3 (notebook 07)
    gaze                      seed 003's gaze regularisation, Tables 4–5 (notebook 08)
    single_network            seed 002's one network with the center loss vs two towers, Tables 1–3 (notebook 09)
    staged_alignment          seed 004's staged alignment, zero-shot, mAP@k, Tables 1–3 (notebook 10)
    train_cli                 the command-line entry point: one recipe, one run, one process or many (torchrun)
"""
