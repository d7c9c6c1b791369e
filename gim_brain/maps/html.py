"""Self-contained interactive HTML maps (nilearn ``view_surf`` / ``view_img``) that work offline.

nilearn inlines its JavaScript (plotly, brainsprite, jQuery) into the page; the only
network reference it adds is a favicon link, which :func:`make_offline` removes.
:func:`external_resources` lists whatever the page would still fetch (script, link,
img, iframe, ... sources with a network scheme), so a saved page can be checked.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import nibabel as nib
import numpy as np

from .style import MapStyle, style_for
from .surface import HEMIS, _fsaverage_name, fsaverage_meshes, fsaverage_sulcal, surface_values

__all__ = ["surface_html", "volume_html", "make_offline", "external_resources", "save_html"]

_RESOURCE_ATTRS = {"script": "src", "link": "href", "img": "src", "iframe": "src",
                   "embed": "src", "source": "src", "audio": "src", "video": "src",
                   "object": "data"}
_NETWORK = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
_FAVICON = re.compile(r"<link[^>]*rel=[\"'](?:shortcut )?icon[\"'][^>]*>", re.IGNORECASE)


class _ResourceFinder(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attr = _RESOURCE_ATTRS.get(tag)
        for name, value in attrs:
            if value and (name == attr or (tag == "link" and name == "href")) \
                    and _NETWORK.match(value):
                self.urls.append(value)


def external_resources(html: str) -> list[str]:
    """Network URLs the page loads by itself (``<script src>``, ``<link href>``, ``<img src>``...).

    URLs that only appear inside inlined JavaScript (plotly's help links) are not loaded
    and are not listed.
    """
    finder = _ResourceFinder()
    finder.feed(html)
    return finder.urls


def make_offline(html: str) -> str:
    """Remove nilearn's remote favicon link; raise if other network resources remain."""
    html = _FAVICON.sub("", html)
    remaining = external_resources(html)
    if remaining:
        raise RuntimeError(f"HTML map would still load network resources: {remaining}")
    return html


def save_html(html: str, path: str | Path) -> Path:
    """Write an HTML page atomically (UTF-8), readable like any file the user creates."""
    from .._cache import atomic_write_bytes

    path = Path(path)
    atomic_write_bytes(path, html.encode("utf-8"))
    return readable(path)


def readable(path: Path) -> Path:
    """Give ``path`` the permissions of a normally created file (atomic writes make 0600)."""
    import os

    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
    return path


def surface_html(surf_img, kind: str = "r", title: str = "", style: MapStyle | None = None,
                 mesh=None, bg_map=None) -> str:
    """Interactive 3-D view of both hemispheres (plotly, inlined), as an offline HTML page.

    Parameters
    ----------
    surf_img : SurfaceImage
        Values per vertex.
    mesh : PolyMesh, optional
        Mesh to draw on; default fsaverage inflated of matching resolution.
    bg_map : SurfaceImage or dict of arrays, optional
        Shading; default fsaverage sulcal depth.

    Returns
    -------
    str
        Complete HTML document.
    """
    from nilearn import plotting
    from nilearn.surface import SurfaceImage

    values = surface_values(surf_img)
    if mesh is None or bg_map is None:
        name = _fsaverage_name(values["left"].size)
        mesh = mesh if mesh is not None else fsaverage_meshes(name)["inflated"]
        bg_map = bg_map if bg_map is not None else fsaverage_sulcal(name)
    if isinstance(bg_map, dict):
        bg_map = SurfaceImage(mesh=mesh, data={h: np.asarray(bg_map[h], np.float32) for h in HEMIS})
    all_values = np.concatenate([values[h] for h in HEMIS])
    style = style or style_for(kind, all_values[all_values != 0])
    shown = SurfaceImage(mesh=mesh, data={h: style.for_display(values[h]).astype(np.float32)
                                          for h in HEMIS})
    view = plotting.view_surf(
        mesh, shown, bg_map=bg_map, hemi="both", threshold=style.nilearn_threshold,
        cmap=style.cmap, symmetric_cmap=style.signed, vmax=style.vmax,
        vmin=None if style.signed else style.vmin, title=title or None, title_fontsize=16,
        colorbar_fontsize=12,
    )
    return make_offline(view.get_standalone())


def volume_html(img: nib.Nifti1Image, kind: str = "r", title: str = "",
                style: MapStyle | None = None, bg_img="MNI152") -> str:
    """Interactive slice viewer (brainsprite, inlined) of a value volume, as offline HTML.

    ``bg_img``: ``"MNI152"`` (bundled template), an image (e.g. the subject's reference
    volume), or None.
    """
    from nilearn import plotting

    data = np.asarray(img.dataobj)
    style = style or style_for(kind, data[(data != 0) & np.isfinite(data)])
    shown = nib.Nifti1Image(style.for_display(data).astype(np.float32), img.affine)
    kwargs = {}
    if bg_img is None:
        kwargs["bg_img"] = False
    elif not (isinstance(bg_img, str) and bg_img == "MNI152"):
        kwargs["bg_img"] = bg_img
    view = plotting.view_img(
        shown, threshold=style.nilearn_threshold, cmap=style.cmap,
        symmetric_cmap=style.signed, vmax=style.vmax,
        vmin=None if style.signed else style.vmin, title=title or None,
        resampling_interpolation="nearest", **kwargs,
    )
    return make_offline(view.get_standalone())
