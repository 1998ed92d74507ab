"""Feature extraction: VGG19 fc7 image features (torchvision) and text features (tag BoW, Doc2Vec)."""
from cmhash.features.image import FC7_DIM, extract_vgg19_fc7, imagenet_transform, vgg19_weights_path
from cmhash.features.text import bag_of_words, check_hashseed, doc2vec

__all__ = [
    "FC7_DIM",
    "bag_of_words",
    "check_hashseed",
    "doc2vec",
    "extract_vgg19_fc7",
    "imagenet_transform",
    "vgg19_weights_path",
]
