"""Annotation and file formats shared by corpora, one module per format, each named after it.

    coco      COCO object annotations (boxes, polygons, RLE, `iscrowd` regions)
    cric      the CRIC platform's classification export (CSV / JSON nucleus points)
    labelme   LabelMe JSON shapes
    matlab    MATLAB .mat v5 (scipy) and v7.3 (HDF5, h5py), bounded and confined to the file
    voc       Pascal VOC XML boxes
    wkt       well-known-text geometries (POINT, POLYGON, MULTIPOLYGON)
    yolo      YOLO normalised box labels
    rle       run-length encodings: COCO (list and compressed), CISD, Kaggle / DSB 2018
    masks     masks to boxes and outline polygons; instance label maps
    geometry  checked coordinates, boxes, polygons, points; 1-based to 0-based; clipping
    jsonfile  JSON with size and nesting-depth limits
    csvfile   CSV with a field-size limit and line numbers
    naming    natural sort order and tolerant name keys

Every reader checks the values it hands on and raises a `cytohub.errors.CytohubError` whose message names the
annotation file and the record ("annotations.json: annotation id 17 (image 3): bbox has NaN"); nothing is
changed silently (a value is refused, never replaced by another). Builders keep only what is particular to
their corpus. Coordinates follow cytohub's convention: pixels, origin top-left, x right, y down, 0-based.
"""
