"""Label functions for the chapter's data sets.

They live in their own small module because `learn.export()` pickles the label
function by reference: `load_learner` in another process must be able to import it.
"""

from pathlib import Path


def is_cat(x) -> bool:
    """The chapter's rule: in Oxford-IIIT Pets, cat breeds' file names start upper-case.

    fastai's `from_name_func` passes the file *name* (a string); a Path is accepted too.
    """
    if isinstance(x, Path):
        x = x.name
    return x[0].isupper()
