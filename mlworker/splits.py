"""How a run splits its images, in a module of its own: the web process's job form needs it, and
importing mlworker.training would load numpy and the data set code into every web process."""


def split_sizes(n_images: int, valid_pct: float) -> tuple[int, int]:
    """(training, validation) image counts of a run, cut as fastai's RandomSplitter cuts them.

    The validation set takes `int(valid_pct * n)` images, the training set the rest. Its
    DataLoader drops an incomplete last batch, so no batch can be larger than the training set:
    the form checks that before a job is queued, with these numbers.
    """
    n_valid = int(valid_pct * n_images)
    return n_images - n_valid, n_valid
