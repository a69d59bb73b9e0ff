"""A photo's caption and people as XMP, merged into whatever XMP the photo already has.

The writer photo managers read (digiKam, Immich, darktable, Lightroom; see README, "Captions and
people for photo managers"): ``dc:description`` (the frame's text), ``Iptc4xmpExt:PersonInImage``
(the names of the characters in the photo) and MWG regions (``mwg-rs:Regions``).

MWG regions follow the Metadata Working Group's "Guidelines for Handling Image Metadata" 2.0
(November 2010), section 5.9 "Image Region Metadata" (with 5.4 "Orientation"): a region is an
area of the image *as stored*, before the reader applies the EXIF orientation;
``mwg-rs:AppliedToDimensions`` is that stored pixel grid, and ``stArea:x``/``stArea:y`` are the
region's centre and ``stArea:w``/``stArea:h`` its size, each as a fraction of the grid
(``stArea:unit="normalized"``). The caller gives areas in that grid (``desktop_app.app.captions``
turns the story's upright boxes into it).

An existing packet is the user's data: ``merge_caption`` keeps every property and every region it
holds, replaces only the description's default language and the regions an earlier export of
ours wrote (marked ``storyteller:Source``), and adds names to ``PersonInImage``. The stdlib's
``xml.etree`` does the parsing; every namespace the packet declares is registered first so that
its prefixes survive the round trip (ElementTree would otherwise rename them ``ns0``...).
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xml": "http://www.w3.org/XML/1998/namespace",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "mwg-rs": "http://www.metadataworkinggroup.com/schemas/regions/",
    "stDim": "http://ns.adobe.com/xap/1.0/sType/Dimensions#",
    "stArea": "http://ns.adobe.com/xmp/sType/Area#",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "Iptc4xmpCore": "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/",
    "storyteller": "https://storyteller.invalid/ns/xmp/1.0/",
}
# Location an XMP packet can carry: dropped from photos shared with others unless asked to keep.
LOCATION_PROPERTIES = frozenset(
    {
        *(
            f"{{{NS['exif']}}}{name}"
            for name in (
                "GPSLatitude",
                "GPSLongitude",
                "GPSAltitude",
                "GPSAltitudeRef",
                "GPSDestLatitude",
                "GPSDestLongitude",
                "GPSImgDirection",
                "GPSImgDirectionRef",
                "GPSTimeStamp",
                "GPSSpeed",
                "GPSSpeedRef",
                "GPSTrack",
                "GPSTrackRef",
                "GPSMapDatum",
                "GPSAreaInformation",
                "GPSProcessingMethod",
                "GPSVersionID",
                "GPSStatus",
                "GPSMeasureMode",
                "GPSDOP",
                "GPSSatellites",
                "GPSDifferential",
                "GPSHPositioningError",
            )
        ),
        *(f"{{{NS['photoshop']}}}{name}" for name in ("City", "State", "Country")),
        f"{{{NS['Iptc4xmpCore']}}}Location",
        f"{{{NS['Iptc4xmpCore']}}}CountryCode",
        f"{{{NS['Iptc4xmpExt']}}}LocationCreated",
        f"{{{NS['Iptc4xmpExt']}}}LocationShown",
    }
)
OUR_SOURCE = "story"
_XPACKET_ID = "W5M0MpCehiHzreSzNTczkc9d"  # the fixed id every XMP packet header carries


class XmpError(ValueError):
    """An existing XMP packet that cannot be read; the message says which and what to do."""


@dataclass(frozen=True)
class PhotoRegion:
    """An area of the stored photo: centre and size as fractions of the stored pixel grid.

    ``kind`` is an MWG region type: ``Face`` for people (every character), ``Focus`` otherwise.
    """

    name: str
    kind: str
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class PhotoCaption:
    """What one photo gets: its text, the people in it, their regions on the stored grid."""

    description: str
    people: tuple[str, ...] = ()
    regions: tuple[PhotoRegion, ...] = ()
    stored_size: tuple[int, int] | None = None  # (width, height) of the pixels as stored


def _q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


def _register(extra: Iterable[tuple[str, str]] = ()) -> None:
    for prefix, uri in (*NS.items(), *extra):
        if prefix == "xml" or not prefix or re.fullmatch(r"ns\d+", prefix):
            continue
        try:
            ET.register_namespace(prefix, uri)
        except ValueError:
            continue


def _declared_namespaces(packet: bytes) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for _event, (prefix, uri) in ET.iterparse(io.BytesIO(packet), events=("start-ns",)):
        found.append((prefix, uri))
    return found


def _new_packet() -> ET.Element:
    root = ET.Element(_q("x", "xmpmeta"))
    rdf = ET.SubElement(root, _q("rdf", "RDF"))
    ET.SubElement(rdf, _q("rdf", "Description"), {_q("rdf", "about"): ""})
    return root


def _descriptions(root: ET.Element) -> list[ET.Element]:
    rdf = root if root.tag == _q("rdf", "RDF") else root.find(_q("rdf", "RDF"))
    if rdf is None:
        raise XmpError("the XMP has no rdf:RDF element")
    found = rdf.findall(_q("rdf", "Description"))
    if not found:
        found = [ET.SubElement(rdf, _q("rdf", "Description"), {_q("rdf", "about"): ""})]
    return found


def _property(descriptions: Sequence[ET.Element], tag: str) -> ET.Element | None:
    for description in descriptions:
        element = description.find(tag)
        if element is not None:
            return element
    return None


def _container(prop: ET.Element, kind: str) -> ET.Element:
    """The ``rdf:Bag``/``rdf:Alt``/``rdf:Seq`` of a property, made if the property has none."""
    for name in ("Bag", "Alt", "Seq"):
        found = prop.find(_q("rdf", name))
        if found is not None:
            return found
    return ET.SubElement(prop, _q("rdf", kind))


def _set_description(descriptions: Sequence[ET.Element], text: str) -> None:
    tag = _q("dc", "description")
    for description in descriptions:  # the attribute form holds no language: make it an Alt
        if tag in description.attrib:
            description.attrib.pop(tag)
    prop = _property(descriptions, tag)
    if prop is None:
        prop = ET.SubElement(descriptions[0], tag)
    alt = _container(prop, "Alt")
    lang = _q("xml", "lang")
    default = next((li for li in alt if li.get(lang) == "x-default"), None)
    if default is None:
        default = ET.Element(_q("rdf", "li"), {lang: "x-default"})
        alt.insert(0, default)
    default.text = text


def _add_people(descriptions: Sequence[ET.Element], people: Sequence[str]) -> None:
    if not people:
        return
    prop = _property(descriptions, _q("Iptc4xmpExt", "PersonInImage"))
    if prop is None:
        prop = ET.SubElement(descriptions[0], _q("Iptc4xmpExt", "PersonInImage"))
    bag = _container(prop, "Bag")
    have = {(li.text or "").strip() for li in bag}
    for person in people:
        if person not in have:
            ET.SubElement(bag, _q("rdf", "li")).text = person
            have.add(person)


def _struct(element: ET.Element) -> ET.Element:
    """The element holding a struct's fields: itself (``rdf:parseType="Resource"``) or its
    ``rdf:Description`` child."""
    inner = element.find(_q("rdf", "Description"))
    return inner if inner is not None else element


def _ours(li: ET.Element) -> bool:
    source = _q("storyteller", "Source")
    for node in li.iter():
        if node.get(source) == OUR_SOURCE or (node.tag == source and node.text == OUR_SOURCE):
            return True
    return False


def _fmt(value: float) -> str:
    return f"{min(max(value, 0.0), 1.0):.6f}".rstrip("0").rstrip(".") or "0"


def _region_item(region: PhotoRegion) -> ET.Element:
    li = ET.Element(_q("rdf", "li"), {_q("rdf", "parseType"): "Resource"})
    ET.SubElement(li, _q("mwg-rs", "Name")).text = region.name
    ET.SubElement(li, _q("mwg-rs", "Type")).text = region.kind
    ET.SubElement(
        li,
        _q("mwg-rs", "Area"),
        {
            _q("stArea", "x"): _fmt(region.x),
            _q("stArea", "y"): _fmt(region.y),
            _q("stArea", "w"): _fmt(region.w),
            _q("stArea", "h"): _fmt(region.h),
            _q("stArea", "unit"): "normalized",
        },
    )
    ET.SubElement(li, _q("storyteller", "Source")).text = OUR_SOURCE
    return li


def _set_regions(
    descriptions: Sequence[ET.Element],
    regions: Sequence[PhotoRegion],
    stored_size: tuple[int, int] | None,
) -> None:
    prop = _property(descriptions, _q("mwg-rs", "Regions"))
    if prop is None:
        if not regions or stored_size is None:
            return
        prop = ET.SubElement(
            descriptions[0], _q("mwg-rs", "Regions"), {_q("rdf", "parseType"): "Resource"}
        )
    info = _struct(prop)
    if stored_size is not None and info.find(_q("mwg-rs", "AppliedToDimensions")) is None:
        ET.SubElement(
            info,
            _q("mwg-rs", "AppliedToDimensions"),
            {
                _q("stDim", "w"): str(stored_size[0]),
                _q("stDim", "h"): str(stored_size[1]),
                _q("stDim", "unit"): "pixel",
            },
        )
    region_list = info.find(_q("mwg-rs", "RegionList"))
    if region_list is None:
        region_list = ET.SubElement(info, _q("mwg-rs", "RegionList"))
    bag = _container(region_list, "Bag")
    for li in [li for li in bag if _ours(li)]:
        bag.remove(li)
    for region in regions:
        bag.append(_region_item(region))


def _serialise(root: ET.Element) -> bytes:
    ET.indent(root, space=" ")
    body = ET.tostring(root, encoding="unicode")
    return (
        f'<?xpacket begin="\ufeff" id="{_XPACKET_ID}"?>\n{body}\n<?xpacket end="w"?>\n'
    ).encode()


def _parse(existing: bytes | None) -> ET.Element:
    if existing is None or not existing.strip():
        _register()
        return _new_packet()
    try:
        _register(_declared_namespaces(existing))
        return ET.fromstring(existing)
    except ET.ParseError as err:
        raise XmpError(f"the XMP cannot be read ({err}): fix or move the file") from err


def merge_caption(caption: PhotoCaption, existing: bytes | None = None) -> bytes:
    """An XMP packet with ``caption`` merged into ``existing`` (a packet, or None for a new one).

    Every property of ``existing`` is kept; only the description's default language and regions
    an earlier export of ours wrote are replaced. Raises ``XmpError`` for a packet that is not
    XML.
    """
    root = _parse(existing)
    descriptions = _descriptions(root)
    _set_description(descriptions, caption.description)
    _add_people(descriptions, caption.people)
    _set_regions(descriptions, caption.regions, caption.stored_size)
    return _serialise(root)


def without_location(packet: bytes) -> bytes:
    """``packet`` without the location properties in ``LOCATION_PROPERTIES`` (attribute or
    element form)."""
    root = _parse(packet)
    for description in _descriptions(root):
        for name in [name for name in description.attrib if name in LOCATION_PROPERTIES]:
            description.attrib.pop(name)
        for child in [child for child in description if child.tag in LOCATION_PROPERTIES]:
            description.remove(child)
    return _serialise(root)
