"""`python -m relzoo.datasets.clevr --split train --scenes 1000 --out DIR`: generate a split of
the CLEVR-format world as a folder in CLEVR_v1.0's layout (see `dataset.main`)."""

from relzoo.datasets.clevr.dataset import main

main()
