# make_smap.py writes SMAP_L3_2024-01-01.h5, the HDF5 file the rig seeds in
# public-reference-data/smap/v9: a coarse, synthetic stand-in for a SMAP L3
# daily soil moisture granule (not NASA data), small enough to embed. Run it
# with Debian's python3-h5py: /usr/bin/python3 make_smap.py (it writes the
# same bytes every time).
import h5py, numpy as np
rng = np.random.default_rng(2024)
nlat, nlon = 72, 144
lat = np.linspace(88.75, -88.75, nlat, dtype="f4")
lon = np.linspace(-178.75, 178.75, nlon, dtype="f4")
la, lo = np.meshgrid(lat, lon, indexing="ij")
sm = (0.25 + 0.15*np.cos(np.radians(la))*np.sin(np.radians(lo*2)) + 0.02*rng.standard_normal((nlat, nlon))).astype("f4")
ocean = (np.abs(np.sin(np.radians(lo*1.3)) * np.cos(np.radians(la*2))) > 0.55)
sm[ocean] = -9999.0
with h5py.File("SMAP_L3_2024-01-01.h5", "w", track_order=False) as f:
    f.attrs["title"] = "s3mount demo: a coarse, synthetic stand-in for a SMAP L3 daily soil moisture granule"
    f.attrs["source"] = "generated for the s3mount test rig; not NASA data"
    g = f.create_group("Soil_Moisture_Retrieval_Data_AM")
    d = g.create_dataset("soil_moisture", data=sm, chunks=(24, 48), compression="gzip", compression_opts=4)
    d.attrs["units"] = "cm**3/cm**3"
    d.attrs["_FillValue"] = np.float32(-9999.0)
    d.attrs["valid_min"] = np.float32(0.02)
    d.attrs["valid_max"] = np.float32(0.5)
    g.create_dataset("latitude", data=np.repeat(lat[:, None], nlon, axis=1), chunks=(24, 48), compression="gzip")
    g.create_dataset("longitude", data=np.repeat(lon[None, :], nlat, axis=0), chunks=(24, 48), compression="gzip")
