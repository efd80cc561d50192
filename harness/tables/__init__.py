"""The store -> ScoreTable seam: every table the ranking side sees is built here, on the way out."""
