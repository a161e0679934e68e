"""Generating images and seeing the painting, as a Python API (generate.py is a thin CLI on it).

The Fast Weight Painter (Irie & Schmidhuber, "Images as Weight Matrices: Sequential Image
Generation Through Synaptic Learning Rules", ICLR 2023) makes an image as a sum of T rank-1
updates; `painting.api` turns that process into figures and animations (rank-1 update frames
above partial images, display normalisation of FPA.md section 5) and offers the generation
tools that work for every registered generator: per-seed images, latent interpolation videos
(slerp in z, lerp in w) and style-mixing grids across the rows of ws (painting steps for the
FPA, layers for StyleGAN2). Everything works on CPU and GPU and is reproducible per seed.

    from painting import api
    G = api.load_generator('network-snapshot-000100.pkl', device='cpu')
    images = api.generate_images(G, seeds=[0, 1, 2])           # float32 [3, C, N, N] in [-1, 1]
    painted = api.paint_seeds(G, seeds=[0])                    # uint8 display frames
    api.save_image(api.painting_figure(painted, 0, scale=4), 'paint-seed0000.png')
"""
