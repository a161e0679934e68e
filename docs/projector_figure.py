"""Draw docs/projector/fmnist-projections.png: Fashion-MNIST test images (not seen in training)
projected into an FPA and a StyleGAN2 network trained on the Fashion-MNIST training set, with
the same number of steps, and print the distance each reached as a markdown table.

Columns: the target, the FPA with one code per painting step (projector.py's default for a
painting generator), the FPA with one tied code, StyleGAN2 with one tied w (upstream). The
targets are the test images padded from 28x28 to 32x32 as dataset_tool.py pads the training
images. Distance: projector.py's (multi-scale pixel distance without --vgg16).

    python docs/projector_figure.py --fpa=FPA.pkl --stylegan2=SG2.pkl [--images=0,1,2,4,8,9] [--num-steps=1000]
"""

import os
import sys

import click
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import projector                                # noqa: E402
from dataset_tool import read_idx               # noqa: E402
from dnnlib import util                         # noqa: E402
from painting import api, latents, pictures        # noqa: E402

FASHION_MNIST_TEST = '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz'
CLASSES = ['T-shirt/top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot']

@click.command()
@click.option('--fpa', 'fpa_pkl',             help='FPA network file', metavar='PATH', required=True)
@click.option('--stylegan2', 'stylegan2_pkl', help='StyleGAN2 network file', metavar='PATH', required=True)
@click.option('--images',                     help='Indices of Fashion-MNIST test images', default='0,1,2,4,8,9', show_default=True)
@click.option('--num-steps',                  help='Projection steps for every network', type=int, default=1000, show_default=True)
@click.option('--out',                        help='Output picture', default='docs/projector/fmnist-projections.png', show_default=True)
@click.option('--scale',                      help='Pixel scale', type=int, default=3, show_default=True)
def main(fpa_pkl, stylegan2_pkl, images, num_steps, out, scale):
    if not os.path.isfile(FASHION_MNIST_TEST):
        raise click.ClickException(f'{FASHION_MNIST_TEST} not found (Debian package dataset-fashion-mnist)')
    indices = util.parse_int_list(images)
    test = np.pad(read_idx(FASHION_MNIST_TEST, 2051, max(indices) + 1), [[0, 0], [2, 2], [2, 2]])
    labels = read_idx(FASHION_MNIST_TEST.replace('images-idx3', 'labels-idx1'), 2049, max(indices) + 1)
    columns = [('FPA, one code per step', fpa_pkl, False), ('FPA, one tied code', fpa_pkl, True), ('StyleGAN2, one tied w', stylegan2_pkl, True)]
    networks = {path: api.load_generator(path, device='cpu') for path in (fpa_pkl, stylegan2_pkl)}
    rows, table = [], []
    for index in indices:
        target = test[index][:, :, None]
        row, dists = [target], []
        for _, path, tied in columns:
            G = networks[path]
            target_float = projector.target_tensor(target)
            result = projector.project(G, target_float, projector.PyramidDistance(), num_steps=num_steps, tied=tied, seed=0)   # The seed the figure below was made with.
            G_noise = api.load_generator(path, device='cpu')
            latents.set_noise_buffers(G_noise, result.noise)
            row.append(projector.synthesize(G_noise, result.ws[-1:])[0])
            dists.append(result.dists[-1])
        rows.append([pictures.upscale(image, scale) for image in row])
        table.append((index, CLASSES[labels[index]], dists))
        print(f'test image {index} ({CLASSES[labels[index]]}): ' + ', '.join(f'{name} {d:.4f}' for (name, _, _), d in zip(columns, dists)), flush=True)
    os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
    pictures.save_image(pictures.tile(rows, gap_px=2), out)
    print(f'Wrote {out}\n')
    print('| test image | ' + ' | '.join(name for name, _, _ in columns) + ' |')
    print('|---|' + '---:|' * len(columns))
    for index, label, dists in table:
        print(f'| {index} ({label}) | ' + ' | '.join(f'{d:.4f}' for d in dists) + ' |')
    means = np.mean([dists for _, _, dists in table], axis=0)
    print('| mean | ' + ' | '.join(f'{d:.4f}' for d in means) + ' |')

if __name__ == '__main__':
    main()
