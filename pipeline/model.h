/* The model object behind vidcap.h: a validated safetensors file, the network bound to it, its labels
 * and its preprocessing. */
#pragma once
#include "nn/safetensors.h"
#include "vision/nest.h"
#include "vision/preprocess.h"
#include "vidcap.h"

/* requested > 0, or min(4, online cores) */
int vc_default_threads(int requested);

struct vc_model {
    st_file *file;
    char arch[32];
    char description[512];
    vc_model_params params;
    nest_model nest;
    img_preprocess pre;
    int n_labels;
    char **labels;
};
