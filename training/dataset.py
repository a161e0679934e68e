"""Image datasets in the StyleGAN2-ADA format, and an endless sharded sampler.

A dataset is a directory (searched recursively) or a zip archive of image files, plus an
optional `dataset.json` at its root holding `{"labels": [[relative/path.png, label], ...]}`
where each label is an integer class (one-hot encoded here) or a list of floats (kept as a
vector). `dataset_tool.py` writes this format (uncompressed PNGs `NNNNN/imgNNNNNNNN.png`).
Images come out as uint8 numpy arrays [C, H, W]; labels as float32 [label_dim].

Karras et al., "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020
(x-flip dataset augmentation, section 2 and appendix A).
"""

import json
import os
import zipfile
from typing import Any, Iterator

import numpy as np
import PIL.Image
import torch

from dnnlib import util
from training.image_files import GREY_MODES, IMAGE_EXTENSIONS, exif_oriented_size, image_to_array, is_image_file, parse_labels, standardize_image, \
    unsafe_archive_names

#----------------------------------------------------------------------------

# The dataset classes whose name may come from a file (a network file's training_set_kwargs).
DATASET_CLASSES = ('training.dataset.ImageFolderDataset',)

class ImageFolderDataset(torch.utils.data.Dataset):
    """Images from a directory or a zip, as uint8 [C, H, W] with float32 labels [label_dim].
    The zip is opened lazily, once per process, so DataLoader workers never share a handle."""

    def __init__(self,
        path:         str,                  # Directory or .zip of images (dataset_tool.py output or any folder).
        resolution:   int | None = None,    # Expected side length; None = take it from the data.
        use_labels:   bool = False,         # Return labels from dataset.json? False = label_dim 0.
        xflip:        bool = False,         # Double the dataset with horizontally mirrored copies.
        max_size:     int | None = None,    # Use a random subset of at most this many images; None = all.
        random_seed:  int = 0,              # Seed for choosing the max_size subset.
    ):
        self._path = str(path)
        self._zipfile = None
        self._zipfile_pid = None
        self.name = os.path.splitext(os.path.basename(os.path.normpath(self._path)))[0]

        if os.path.isdir(self._path):
            self._type = 'dir'
            all_fnames = [os.path.relpath(os.path.join(root, fname), start=self._path).replace(os.sep, '/')
                          for root, _dirs, files in os.walk(self._path) for fname in files]
        elif os.path.isfile(self._path) and zipfile.is_zipfile(self._path):
            self._type = 'zip'
            all_fnames = [info.filename for info in self._get_zipfile().infolist() if not info.is_dir()]
            unsafe = unsafe_archive_names(all_fnames)
            if unsafe:
                raise IOError(f'{self._path}: {len(unsafe)} entr{"ies have" if len(unsafe) > 1 else "y has"} an absolute or ".." name '
                              f'(e.g. "{unsafe[0]}"); re-make the zip with relative names (dataset_tool.py --source=DIR)')
        elif os.path.exists(self._path):
            raise IOError(f'{self._path}: not a directory or a zip archive')
        else:
            raise IOError(f'{self._path}: dataset not found')
        self._image_fnames = sorted(fname for fname in all_fnames if is_image_file(fname))
        if not self._image_fnames:
            raise IOError(f'{self._path}: no image files found (extensions {", ".join(IMAGE_EXTENSIONS)})')

        # Shape from the first image; every image is checked against it when loaded.
        first = self._load_raw_image(0)
        self._raw_shape = [len(self._image_fnames)] + list(first.shape)
        channels, height, width = first.shape
        if height != width:
            raise ValueError(f'{self._path}: images are {width}x{height}; square images are required (dataset_tool.py --transform can crop them)')
        if resolution is not None and height != resolution:
            raise ValueError(f'{self._path}: images are {width}x{height}, but resolution={resolution} was requested')

        # Labels.
        self._raw_labels = None
        if use_labels:
            self._raw_labels = parse_labels(self._load_labels_json(), self._image_fnames, where=f'{self._path}: dataset.json')
            if self._raw_labels is None:
                raise ValueError(f'{self._path}: use_labels=True, but the dataset has no labels (dataset.json missing or "labels": null)')

        # Subset and x-flips: item i is raw image _raw_idx[i], mirrored when _xflip[i].
        self._raw_idx = np.arange(len(self._image_fnames), dtype=np.int64)
        if max_size is not None and max_size < 1:
            raise ValueError(f'{self._path}: max_size must be at least 1, got {max_size}')
        if max_size is not None and self._raw_idx.size > max_size:
            rnd = np.random.RandomState(random_seed)
            self._raw_idx = np.sort(rnd.choice(self._raw_idx, size=max_size, replace=False))
        self._xflip = np.zeros(self._raw_idx.size, dtype=np.uint8)
        if xflip:
            self._raw_idx = np.tile(self._raw_idx, 2)
            self._xflip = np.concatenate([self._xflip, np.ones_like(self._xflip)])
        self._close()

    #------------------------------------------------------------------------
    # File access. The zip handle belongs to the process that opened it.

    def _get_zipfile(self) -> zipfile.ZipFile:
        assert self._type == 'zip'
        if self._zipfile is None or self._zipfile_pid != os.getpid():
            self._zipfile = zipfile.ZipFile(self._path)  # A forked worker gets its own handle.
            self._zipfile_pid = os.getpid()
        return self._zipfile

    def _open_file(self, fname: str):
        if self._type == 'dir':
            return open(os.path.join(self._path, fname), 'rb')
        return self._get_zipfile().open(fname, 'r')

    def _close(self) -> None:
        if self._zipfile is not None and self._zipfile_pid == os.getpid():
            self._zipfile.close()
        self._zipfile = None
        self._zipfile_pid = None

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _zipfile=None, _zipfile_pid=None)

    def __del__(self):
        try:
            self._close()
        except Exception:
            pass

    def _load_labels_json(self) -> Any:
        if self._type == 'dir':
            json_path = os.path.join(self._path, 'dataset.json')
            if not os.path.isfile(json_path):
                return None
            with open(json_path, 'rb') as f:
                data = f.read()
        else:
            if 'dataset.json' not in self._get_zipfile().namelist():
                return None
            data = self._get_zipfile().read('dataset.json')
        try:
            content = json.loads(data)
        except ValueError as err:
            raise ValueError(f'{self._path}: dataset.json is not valid JSON ({err})') from None
        if not isinstance(content, dict):
            raise ValueError(f'{self._path}: dataset.json must hold an object with a "labels" entry')
        return content.get('labels')

    def check_images(self) -> None:
        """Check that every image is intact and has the first image's size and channel count:
        PNGs (dataset_tool.py's output) by PIL's verify (chunk checksums and completeness,
        without decoding), other formats, whose verify checks nothing, by decoding them. A
        training run calls it before it makes its run directory. IOError naming the file."""
        channels, height, width = self._raw_shape[1:]
        for fname in self._image_fnames:
            try:
                with self._open_file(fname) as f:
                    img = PIL.Image.open(f)
                    if img.format == 'PNG':
                        img.verify()    # Reads the file to its end: the header is read again below.
                    else:
                        img.load()
                with self._open_file(fname) as f:
                    img = PIL.Image.open(f)
                    size, mode = exif_oriented_size(img), img.mode
            except (OSError, ValueError, SyntaxError, EOFError, PIL.Image.DecompressionBombError) as err:
                raise IOError(f'{self._path}: cannot decode "{fname}" ({err})') from None
            this_channels = 1 if mode in GREY_MODES else 3
            if size != (width, height) or this_channels != channels:
                raise IOError(f'{self._path}: "{fname}" is {size[0]}x{size[1]} with {this_channels} channel(s), but '
                              f'"{self._image_fnames[0]}" is {width}x{height} with {channels}; all images need one size and '
                              'channel count (dataset_tool.py --resolution and --transform can convert them)')
        self._close()

    def load_raw_image(self, raw_idx: int) -> np.ndarray:
        """Decode raw image `raw_idx` (PNG, JPEG or any IMAGE_EXTENSIONS file, through PIL)
        into uint8 [C, H, W], applying the same standardisation as dataset_tool.py."""
        return self._load_raw_image(raw_idx)

    def _load_raw_image(self, raw_idx: int) -> np.ndarray:
        fname = self._image_fnames[raw_idx]
        try:
            with self._open_file(fname) as f:
                img, _notes = standardize_image(PIL.Image.open(f))
                return image_to_array(img)
        except (OSError, ValueError, SyntaxError, EOFError, PIL.Image.DecompressionBombError) as err:
            raise IOError(f'{self._path}: cannot decode "{fname}" ({err})') from None

    #------------------------------------------------------------------------
    # The torch Dataset interface.

    def __len__(self) -> int:
        return int(self._raw_idx.size)

    def __getitem__(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        raw_idx = int(self._raw_idx[idx])
        image = self._load_raw_image(raw_idx)
        if list(image.shape) != self.image_shape:
            raise IOError(f'{self._path}: "{self._image_fnames[raw_idx]}" has shape {list(image.shape)}, '
                          f'expected {self.image_shape} like the first image (dataset_tool.py makes them uniform)')
        if self._xflip[idx]:
            image = image[:, :, ::-1]
        return np.require(image, requirements=['C', 'W']), self.get_label(idx)   # Writable: torch warns otherwise.

    def get_label(self, idx: int) -> np.ndarray:
        """float32 [label_dim]: a one-hot vector for class labels, the vector itself otherwise."""
        if self._raw_labels is None:
            return np.zeros([0], dtype=np.float32)
        label = self._raw_labels[self._raw_idx[idx]]
        if self._raw_labels.dtype == np.int64:
            onehot = np.zeros(self.label_shape, dtype=np.float32)
            onehot[label] = 1
            return onehot
        return label.copy()

    def get_details(self, idx: int) -> util.EasyDict:
        raw_idx = int(self._raw_idx[idx])
        raw_label = None if self._raw_labels is None else self._raw_labels[raw_idx].copy()
        return util.EasyDict(raw_idx=raw_idx, xflip=bool(self._xflip[idx]), fname=self._image_fnames[raw_idx], raw_label=raw_label)

    #------------------------------------------------------------------------
    # Shapes.

    @property
    def image_shape(self) -> list[int]:
        return list(self._raw_shape[1:])

    @property
    def num_channels(self) -> int:
        return self.image_shape[0]

    @property
    def resolution(self) -> int:
        return self.image_shape[1]

    @property
    def label_shape(self) -> list[int]:
        if self._raw_labels is None:
            return [0]
        if self._raw_labels.dtype == np.int64:
            return [int(self._raw_labels.max()) + 1]
        return list(self._raw_labels.shape[1:])

    @property
    def label_dim(self) -> int:
        return self.label_shape[0]

    @property
    def has_labels(self) -> bool:
        return self.label_dim != 0

#----------------------------------------------------------------------------

class InfiniteSampler(torch.utils.data.Sampler):
    """Endless stream of dataset indices, sharded over `num_replicas` processes.

    The global stream visits the data in passes of N positions; pass p is the permutation
    drawn by numpy's generator seeded with (seed, p), so every index occurs once per pass and
    each pass has its own order. Replica r yields global positions r, r + R, r + 2R, ...
    `start_idx` counts items this replica has already yielded; the position is restored by
    drawing only the permutation of the pass it falls in (constant time in start_idx), so a
    resumed run continues exactly the same stream."""

    def __init__(self,
        dataset:       torch.utils.data.Dataset,  # Anything with __len__.
        rank:          int = 0,                   # This process's index in [0, num_replicas).
        num_replicas:  int = 1,                   # Number of processes sharing the stream.
        seed:          int = 0,                   # Seed of the permutations.
        shuffle:       bool = True,               # False = 0, 1, 2, ... in order.
        start_idx:     int = 0,                   # Items already yielded by this replica (resume).
    ):
        if len(dataset) < 1:
            raise ValueError('InfiniteSampler: the dataset is empty')
        if not (num_replicas >= 1 and 0 <= rank < num_replicas):
            raise ValueError(f'InfiniteSampler: need 0 <= rank < num_replicas, got rank={rank}, num_replicas={num_replicas}')
        if start_idx < 0:
            raise ValueError(f'InfiniteSampler: start_idx must be >= 0, got {start_idx}')
        if seed < 0:
            raise ValueError(f'InfiniteSampler: seed must be >= 0, got {seed}')
        super().__init__()
        self.num_items = len(dataset)
        self.rank = rank
        self.num_replicas = num_replicas
        self.seed = seed
        self.shuffle = shuffle
        self.start_idx = start_idx

    def pass_order(self, pass_idx: int) -> list[int]:
        """The dataset indices in the order of pass `pass_idx` of the global stream."""
        if not self.shuffle:
            return list(range(self.num_items))
        return np.random.default_rng([self.seed, pass_idx]).permutation(self.num_items).tolist()

    def __iter__(self) -> Iterator[int]:
        idx = self.start_idx * self.num_replicas + self.rank     # Global position of this replica's next item.
        order_pass, order = -1, None
        while True:
            pass_idx, i = divmod(idx, self.num_items)
            if pass_idx != order_pass:
                order_pass, order = pass_idx, self.pass_order(pass_idx)
            yield order[i]
            idx += self.num_replicas

#----------------------------------------------------------------------------
