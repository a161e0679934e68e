"""Generating images and seeing the painting, as a Python API (generate.py is a thin CLI on it).

The Fast Weight Painter (Irie & Schmidhuber, "Images as Weight Matrices: Sequential Image
Generation Through Synaptic Learning Rules", ICLR 2023) makes an image as a sum of T rank-1
updates; `painting.paintings` turns that process into figures and animation frames (rank-1
update frames above partial images, display normalisation of docs/fpa-model.md §5). The
other modules serve every registered generator: `api` (loading, per-seed images,
style-mixing grids across the rows of ws: painting steps for the FPA, layers for
StyleGAN2), `latents` (seeds, labels, slerp, projected codes), `pictures` (uint8 pictures,
PNG files, grids) and `animation` (GIF/WebP/MP4, latent interpolation videos). Everything
works on CPU and GPU and is reproducible per seed.

    from painting import api, paintings, pictures
    G = api.load_generator('network-snapshot-000100.pkl', device='cpu')
    images = api.generate_images(G, seeds=[0, 1, 2])           # float32 [3, C, N, N] in [-1, 1]
    painted = paintings.paint_seeds(G, seeds=[0])              # uint8 display frames
    pictures.save_image(paintings.painting_figure(painted, 0, scale=4), 'paint-seed0000.png')
"""
