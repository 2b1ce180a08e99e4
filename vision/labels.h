/* Built-in class names for models whose files carry none (timm's ImageNet NesT checkpoints). */
#pragma once

#define IMG_IMAGENET_CLASSES 1000
extern const char *const img_imagenet_labels[IMG_IMAGENET_CLASSES];
