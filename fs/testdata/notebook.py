"""What a notebook does with a workspace, as one script.

    notebook.py inputs DIR    writes the data the notebook starts from
    notebook.py analyse DIR   opens it and writes the results back to DIR
    notebook.py all DIR       both, one after the other

The inputs stand for data already in the bucket: an HDF5 swath written
with h5py (a chunked float32 dataset with attributes, over 8 MiB, and a
small compressed one), a NetCDF grid written with netCDF4 (a variable on
time, lat and lon coordinates, with gaps), and a CSV of station records
written with pandas. The analysis opens the NetCDF with xarray and averages
it over time and longitude, reads a window and a strided thumbnail of the
HDF5 dataset with h5py, and groups the CSV by site with pandas. It writes
back a NetCDF of the means (xarray's to_netcdf), a CSV of the groups
(pandas' to_csv) and a JSON summary.

Every output is a function of the inputs alone: fixed seeds, no dates of
the day, no paths. The script prints nothing unless something fails.
"""

import json
import os
import sys

import h5py
import netCDF4
import numpy as np
import pandas as pd
import xarray as xr

INPUTS = ("swath.h5", "sst.nc", "stations.csv")
OUTPUTS = ("sst_mean.nc", "by_site.csv", "summary.json")


def write_inputs(d):
    rng = np.random.default_rng(20240102)

    # An HDF5 swath: 8 bands of 512 x 768 float32 in 128 KiB chunks, 12 MiB
    # in all, and a quality flag compressed with gzip.
    with h5py.File(os.path.join(d, "swath.h5"), "w") as f:
        f.attrs["title"] = "Synthetic swath"
        f.attrs["instrument"] = "test imager"
        science = f.create_group("science")
        refl = science.create_dataset(
            "reflectance",
            data=rng.random((8, 512, 768), dtype=np.float32),
            chunks=(1, 128, 256),
        )
        refl.attrs["units"] = "1"
        refl.attrs["valid_range"] = np.array([0.0, 1.0], dtype=np.float32)
        refl.attrs["band_centers_nm"] = np.linspace(450, 900, 8)
        qa = science.create_dataset(
            "quality",
            data=(rng.random((512, 768)) > 0.9).astype(np.uint8),
            chunks=(128, 256),
            compression="gzip",
            shuffle=True,
        )
        qa.attrs["flag_meanings"] = "good cloudy"

    # A NetCDF grid: monthly sea surface temperature on a 2-degree grid,
    # with cloud gaps in the first months.
    with netCDF4.Dataset(os.path.join(d, "sst.nc"), "w", format="NETCDF4") as nc:
        nc.title = "Synthetic sea surface temperature"
        nc.Conventions = "CF-1.8"
        nc.createDimension("time", 12)
        nc.createDimension("lat", 90)
        nc.createDimension("lon", 180)
        time = nc.createVariable("time", "f8", ("time",))
        time.units = "days since 2023-01-01"
        time.calendar = "standard"
        time[:] = np.arange(12) * 30.0
        lat = nc.createVariable("lat", "f4", ("lat",))
        lat.units = "degrees_north"
        lat[:] = np.linspace(-89, 89, 90)
        lon = nc.createVariable("lon", "f4", ("lon",))
        lon.units = "degrees_east"
        lon[:] = np.linspace(-179, 179, 180)
        sst = nc.createVariable(
            "sst", "f4", ("time", "lat", "lon"),
            zlib=True, chunksizes=(1, 90, 180), fill_value=np.float32(-999.0),
        )
        sst.units = "K"
        sst.long_name = "sea surface temperature"
        base = 300.0 - 30.0 * np.abs(np.sin(np.deg2rad(lat[:])))[None, :, None]
        season = 2.0 * np.sin(2 * np.pi * np.arange(12) / 12.0)[:, None, None]
        values = (base + season + rng.normal(0, 0.5, (12, 90, 180))).astype(np.float32)
        values[:3, 40:50, 100:120] = -999.0  # cloud: no data
        sst[:] = values

    # A CSV of daily station records.
    days = pd.date_range("2023-01-01", periods=120, freq="D")
    sites = ["alpha", "bravo", "charlie", "delta", "echo"]
    n = len(days) * len(sites)
    stations = pd.DataFrame({
        "date": np.repeat(days, len(sites)),
        "site": sites * len(days),
        "temperature": np.round(rng.normal(15, 6, n), 2),
        "precipitation": np.round(rng.gamma(0.6, 4.0, n), 1),
    })
    stations.to_csv(os.path.join(d, "stations.csv"), index=False)


def analyse(d):
    # xarray: the mean over time of the grid, and its zonal mean.
    with xr.open_dataset(os.path.join(d, "sst.nc"), engine="netcdf4") as ds:
        sst = ds["sst"]
        mean = sst.mean(dim="time")
        zonal = sst.mean(dim=("time", "lon"))
        out = xr.Dataset({"sst_mean": mean, "sst_zonal_mean": zonal})
        out["sst_mean"].attrs = {"units": "K", "long_name": "mean sea surface temperature over time"}
        out["sst_zonal_mean"].attrs = {"units": "K", "long_name": "zonal mean sea surface temperature"}
        out.attrs = {"title": "Mean of " + ds.attrs["title"], "source": "sst.nc"}
        out.load()
        months = int(ds.sizes["time"])
        gaps = int(sst.isnull().sum())
    out.to_netcdf(os.path.join(d, "sst_mean.nc"), engine="netcdf4")

    # h5py: a window through every band, and a thumbnail of one band.
    with h5py.File(os.path.join(d, "swath.h5"), "r") as f:
        refl = f["science/reflectance"]
        window = refl[:, 100:356, 200:456]
        thumbnail = refl[3, ::8, ::8]
        cloudy = int(f["science/quality"][:].sum())
        units = str(refl.attrs["units"])
        title = str(f.attrs["title"])

    # pandas: the station records by site.
    stations = pd.read_csv(os.path.join(d, "stations.csv"), parse_dates=["date"])
    by_site = stations.groupby("site").agg(
        days=("date", "count"),
        mean_temperature=("temperature", "mean"),
        max_temperature=("temperature", "max"),
        total_precipitation=("precipitation", "sum"),
    )
    by_site.to_csv(os.path.join(d, "by_site.csv"), float_format="%.4f")

    summary = {
        "swath": {
            "title": title,
            "units": units,
            "window_shape": list(window.shape),
            "window_mean": round(float(window.mean(dtype=np.float64)), 9),
            "thumbnail_shape": list(thumbnail.shape),
            "thumbnail_max": float(thumbnail.max()),
            "cloudy_pixels": cloudy,
        },
        "sst": {
            "months": months,
            "missing_values": gaps,
            "global_mean_k": round(float(out["sst_mean"].mean()), 6),
            "coldest_lat": float(out["sst_zonal_mean"].idxmin()),
        },
        "stations": {
            "records": int(len(stations)),
            "first_day": stations["date"].min().strftime("%Y-%m-%d"),
            "last_day": stations["date"].max().strftime("%Y-%m-%d"),
            "wettest_site": str(by_site["total_precipitation"].idxmax()),
        },
    }
    with open(os.path.join(d, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write("\n")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("inputs", "analyse", "all"):
        sys.exit("usage: notebook.py inputs|analyse|all DIR")
    mode, d = sys.argv[1], sys.argv[2]
    if mode in ("inputs", "all"):
        write_inputs(d)
    if mode in ("analyse", "all"):
        analyse(d)


if __name__ == "__main__":
    main()
