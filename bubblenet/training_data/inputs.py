"""What a training run reads: the survey's tiles, its catalogue and positives, the tile split, the samples.

`load_training_survey` opens the survey and splits its tiles;
`training_data` makes the training split's samples
(`bubblenet.training_data.samples.TrainingData`) and, when asked, clusters
its negatives (`bubblenet.training_data.negatives.cluster_negatives`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np

from bubblenet.errors import ConfigError
from bubblenet.training_data.splits import PAPER_TEST_LONGITUDES

__all__ = ["TrainingSurvey", "load_training_survey", "training_data"]


@dataclasses.dataclass
class TrainingSurvey:
    """A survey read for training.

    Attributes
    ----------
    tiles : list of bubblenet.sky.mosaics.SkyTile
    catalogue : astropy.table.Table
        The bubble catalogue (`bubblenet.catalogues.tables.read_catalogue` layout).
    selection : frozenset of str
        Names of the positives.
    split : bubblenet.training_data.splits.Split
        Tile names of the train, validation and test sets.
    """

    tiles: list
    catalogue: object
    selection: object
    split: object

    @property
    def by_name(self) -> dict:
        """Tiles by name."""
        return {t.name: t for t in self.tiles}


def load_training_survey(*, folder: Path | None = None, files8: Sequence = (), files24: Sequence = (),
                         catalogue: str | None = None, selection: str | None = None,
                         test_longitudes: Sequence[float] = PAPER_TEST_LONGITUDES,
                         val: int | Sequence[float] = 4, split_seed: int = 0,
                         split_file: Path | None = None) -> TrainingSurvey:
    """Open a survey with its catalogue and positives, and split its tiles.

    Parameters
    ----------
    folder, files8, files24, catalogue, selection
        See `bubblenet.training_data.samples.survey_inputs`.
    test_longitudes, val, split_seed
        See `bubblenet.training_data.splits.split_tiles` (`val`: a number of
        tiles to draw or their centre longitudes).
    split_file : path-like, optional
        Write the split there as JSON.
    """
    from bubblenet.training_data.samples import survey_inputs
    from bubblenet.training_data.splits import split_tiles

    tiles, table, positives = survey_inputs(folder=folder, files8=files8, files24=files24, catalogue=catalogue,
                                            selection=selection)
    split = split_tiles(tiles, test_longitudes=test_longitudes, val=val, seed=split_seed)
    if split_file is not None:
        split.to_json(split_file)
    return TrainingSurvey(tiles, table, positives, split)


def training_data(survey: TrainingSurvey, config, cache: Path, *, clusters: int = 0,
                  drop_clusters: Sequence[int] = (), cluster_weights: Sequence[float] | None = None,
                  montages: Path | None = None):
    """The training split's samples and, with `clusters` > 0, its negative clusters.

    Parameters
    ----------
    survey : TrainingSurvey
    config : bubblenet.training_data.samples.DataConfig
    cache : path-like
        Tile cache folder.
    clusters, drop_clusters, cluster_weights
        Negative clustering (`bubblenet.training_data.negatives.cluster_negatives`).
    montages : path-like, optional
        Where the cluster montages go.

    Returns
    -------
    data : bubblenet.training_data.samples.TrainingData
    clusters : bubblenet.training_data.negatives.Clusters or None
    """
    from bubblenet.training_data.negatives import cluster_negatives
    from bubblenet.training_data.samples import TrainingData

    data = TrainingData(survey.tiles, survey.catalogue, survey.selection, survey.split, "train", config, cache)
    if not clusters:
        return data, None
    # The sky as it is: clusters of stretched and unstretched views would sort the augmentation, not the sky.
    pool = np.stack([data.negative(i, randomised=False).image for i in range(len(data.negatives))])
    try:
        found = cluster_negatives(pool, k=clusters, seed=config.seed, drop=drop_clusters, weights=cluster_weights,
                                  out_dir=montages)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return data, found
