"""`python -m hf_seg` is the `hf-seg` program (and `accelerate launch -m hf_seg train recipe.json` works too)."""

from hf_seg.cli import main

if __name__ == "__main__":
    main()
