"""Occlusion maps: blanking the ink a model relies on lowers its answer, and the map says where."""

import numpy as np

from mnistlab.models.inference import occlusion_map


def test_the_map_points_at_the_pixels_that_drive_the_answer():
    def probabilities(batch: np.ndarray) -> np.ndarray:
        """Class 1 believes in ink at the top-left, class 0 in ink at the bottom-right."""
        batch = batch.astype(np.float64) / 255
        top, bottom = batch[:, :10, :10].mean((1, 2)), batch[:, 18:, 18:].mean((1, 2))
        logits = np.stack([4 * bottom, 4 * top], 1)
        exp = np.exp(logits - logits.max(1, keepdims=True))
        return exp / exp.sum(1, keepdims=True)

    image = np.zeros((28, 28), np.uint8)
    image[2:8, 2:8] = 255  # ink for class 1
    image[20:26, 20:26] = 255  # ink for class 0
    saliency = occlusion_map(probabilities, image, target=1)
    assert saliency.shape == (28, 28) and saliency.dtype == np.float32
    assert np.abs(saliency).max() == 1.0
    assert saliency[2:8, 2:8].mean() > 0.5  # its own ink supports class 1
    assert saliency[20:26, 20:26].mean() < -0.5  # the other ink argues against it
    assert np.abs(saliency[12:16, 12:16]).max() == 0  # blank paper far from both changes nothing


def test_a_model_that_ignores_the_image_gets_an_empty_map():
    flat = occlusion_map(lambda batch: np.full((len(batch), 2), 0.5), np.full((28, 28), 255, np.uint8), 0)
    assert not flat.any()


def test_tta_batch_by_batch_equals_averaging_whole_shifted_copies():
    """TTA makes each batch's views itself (uint8 stays uint8): the same logits as shifting whole float copies
    of the split, as it once did, at a fraction of the memory."""
    import torch

    from mnistlab.models import create_model
    from mnistlab.models.inference import TTA_SHIFTS, batched_logits, shift_images, tta_logits

    torch.manual_seed(0)
    model = create_model("fastnet", num_classes=10, image_shape=(28, 28))
    images = torch.randint(0, 256, (37, 28, 28), dtype=torch.uint8)
    x = images.float().unsqueeze(1)
    for mirror in (False, True):
        views = [shift_images(x, dy, dx) for dy, dx in TTA_SHIFTS]
        views += [v.flip(-1) for v in views] if mirror else []
        whole = torch.stack([batched_logits(model, v, batch_size=64) for v in views]).mean(0)
        assert torch.allclose(tta_logits(model, images, batch_size=10, mirror=mirror), whole, atol=1e-5)
    assert torch.equal(batched_logits(model, images, 10), batched_logits(model, x, 10))  # uint8 as float


def test_one_pass_gives_each_view_and_the_first_is_the_image_itself():
    """A test's plain and test-time augmented answers come from one pass over the views."""
    import torch

    from mnistlab.models import create_model
    from mnistlab.models.inference import batched_logits, shift_images, tta_logits, tta_views, view_logits

    torch.manual_seed(0)
    model = create_model("fastnet", num_classes=10, image_shape=(28, 28))
    images = torch.randint(0, 256, (23, 28, 28), dtype=torch.uint8)
    views = tta_views()
    per_view = view_logits(model, images, 8, views=views)
    assert per_view.shape == (len(views), 23, 10) and views[0] == (0, 0, False)
    assert torch.allclose(per_view[0], batched_logits(model, images, 64), atol=1e-5)
    dy, dx, _ = views[1]
    assert torch.allclose(per_view[1], batched_logits(model, shift_images(images.float().unsqueeze(1), dy, dx), 64),
                          atol=1e-5)
    assert torch.allclose(per_view.mean(0), tta_logits(model, images, 64), atol=1e-5)
    assert view_logits(model, images[:0], 8, views=views).shape == (len(views), 0, 10)


def test_a_pass_keeps_no_tensor_of_its_own_per_batch():
    """Each batch's logits go into one tensor made before the first batch: small tensors kept batch after batch
    would lie scattered in the memory the batches' activations free (a float32 test of fashion-best with its 10
    views grew by 270 MB that way)."""
    import gc

    import torch

    from mnistlab.models import create_model
    from mnistlab.models.inference import tta_views, view_logits

    model = create_model("mlp", num_classes=10, image_shape=(28, 28))
    alive = []  # the tensors alive as each batch begins
    model.register_forward_pre_hook(lambda module, args: alive.append(
        sum(issubclass(type(o), torch.Tensor) for o in gc.get_objects())))
    images = torch.randint(0, 256, (40, 28, 28), dtype=torch.uint8)
    logits = view_logits(model, images, batch_size=4, views=tta_views())
    assert logits.shape == (5, 40, 10)
    views = len(tta_views())
    assert len(alive) == 10 * views
    firsts = alive[views::views]  # at the first view of the second batch on
    assert max(firsts) == min(firsts)
