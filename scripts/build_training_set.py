#!/usr/bin/env python
"""Build qvi's training corpus: thousands of real, licensed sound effects from Debian packages.

The recipe, not the audio: the corpus lives in a cache folder (default
``~/.cache/qvi/train-corpus``), never in the repository. Each package is fetched with
``apt-get download`` and unpacked with ``dpkg-deb -x`` (nothing is installed or run); sounds
inside game archives (.pk3, .wz, .zip) are read from the archive. Every file is:

1. *categorised* by reviewed tables: ``PACKAGE_RULES`` first (voices that name no sound,
   names that mislead), then speech, music and narration are left out (``SPEECH_OR_MUSIC``),
   then a keyword ``TAXONOMY`` of 29 categories read from the file's name and two folders.
   The first matching rule wins; ``None`` leaves the file out;
2. *converted* as the demo library is (mono, 22.05 kHz, silence trimmed, at most 10 s; long
   ambiences give up to 3 pieces), written as FLAC;
3. *deduplicated by content*: exact and near duplicates (another gain, encoding or cut, or a
   piece of a longer sound) of the demo library (``--exclude-library``, default the bundled
   one) are left out, so evaluating on the demo library stays honest, and so are duplicates
   inside the corpus (games reuse files). Variants of one label are capped (``--max-per-label``);
4. *attributed*: ``ATTRIBUTION.tsv`` gives, per clip, the package and its version, the path
   inside it, the licence and copyright holders from the package's ``debian/copyright``;
   ``LEFT_OUT.tsv`` lists every file left out, why, and the clip it duplicates.

    python scripts/build_training_set.py [--cache DIR] [--packages P ...] [--exclude-library DIR]

Then train on it together with ../shared/train-sfx (docs/TRAINING.md).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import re
import struct
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from debsfx import RATE, CopyrightFile, DuplicateIndex, convert, label_of, unpack  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

#: Packages read by default: game and desktop data under free licences that the demo library
#: (0ad-data, openttd-opensfx, minetest-data, sound-theme-freedesktop, widelands-data,
#: tuxpaint-stamps-default) does not use.
PACKAGES = (
    "megaglest-data", "hedgewars-data", "wesnoth-1.16-data", "redeclipse-data", "warzone2100-data",
    "nexuiz-data", "openarena-data", "freedroidrpg-data", "flightgear-data-base", "lincity-ng-data",
    "supertux-data", "supertuxkart-data", "scorched3d-data", "bzflag-data", "tuxpaint-data", "tuxtype-data",
    "extremetuxracer-data", "frozen-bubble-data", "pingus-data", "chromium-bsu-data", "alienblaster-data",
    "trigger-rally-data", "lugaru-data", "oxygen-sounds", "torcs-data", "enigma-data", "lbreakout2-data",
    "freecol", "powermanga-data", "starfighter-data", "tecnoballz-data", "pinball-data", "solarwolf",
    "trophy-data", "freeciv-data", "tuxfootball", "pokerth-data", "holotz-castle-data", "openclonk-data",
    "berusky2-data", "ardentryst", "warmux-data", "flare-game", "boswars-data", "naev-data", "mazeofgalious-data",
    "endless-sky-data", "btanks-data", "overgod-data", "etw-data", "cube2-data", "searchandrescue-data",
    "wordwarvi-sound", "pekka-kana-2-data", "plee-the-bear-data", "netpanzer-data", "garden-of-coloured-lights-data",
    "mirrormagic-data", "krank", "sdl-ball-data", "neverball-common", "unknown-horizons", "micropolis-data",
    "caveexpress-data", "marsshooter-data", "amphetamine-data", "crossfire-client", "freeorion-data",
    "trackballs-data", "freetennis-common", "heroes-sound-effects", "freedroid-data", "brainparty-data",
    "gigalomania-data", "freedink-data", "davegnukem-data", "simutrans-pak64", "gamine-data",
    "seahorse-adventures", "meritous-data", "jag", "freegish-data", "flobopuyo",
)

AUDIO = re.compile(r"\.(wav|ogg|oga|flac|mp3)$", re.I)
ARCHIVES = re.compile(r"\.(pk3|wz|zip)$", re.I)
C4GROUPS = re.compile(r"^Sound\.ocg$")              # OpenClonk's sound folder, a C4Group file

#: Left out everywhere: speech, voice acting, music and narration, by folder or file name.
SPEECH_OR_MUSIC = re.compile(
    r"(^|/)(music|musics|speech|voices?|announcer|tutorial|codriver|coms|taunts?|memressp|trnsppil|vtoltalk|"
    r"coltive|countdown|sequenceaudio|tux_ingame_comments|voice_samples|tcas|mk-viii|titles|proxmessages|"
    r"extra|nexus)(/|$)|"
    r"music|theme|intro|credits|mainzik|introzik|jingle|_ack\d*\.|_select\d*\.|checklist|radiomessage|"
    r"sara_airport_pa|nolok_speech|excuseme|areyousure|youcannot|tuxok|goodidea|letsgo|ohno|yipee|"
    r"tux_(hello|murp|rap|upset)|penny_runt|lenautile|gnu_flute", re.I)

#: Package-specific rules, (package, regex on the path inside it, category or None to leave the
#: file out), checked first: voices that name no sound, and sounds whose names mislead.
PACKAGE_RULES: list[tuple[str, str, "str | None"]] = [
    ("hedgewars-data", r"/voices/.*/(ooff|ow|ouch|laugh|hmm|jump|nooo|uh-?oh|firepunch|poison(cough|moan)|"
                       r"yoohoo)", "human_vocal"),
    ("hedgewars-data", r"/voices/|/Music/", None),
    ("hedgewars-data", r"/Sounds/\d[A-G]\.ogg|custom\d|hogchant|ride_of_the", None),   # piano notes, songs
    ("hedgewars-data", r"bee(water)?\.ogg", "insect"),
    ("megaglest-data", r"_(ack|select)\d*\.|/music/", None),                          # spoken replies
    ("megaglest-data", r"/tilesets/.*/(owl|rooster)", "bird"),
    ("megaglest-data", r"/tilesets/.*/(nightime|sunny_day)", "ambience"),
    ("megaglest-data", r"/units/(chicken|cow|pig|sheep|bull|wild_sow)/|/(pig|cow)_", "animal_domestic"),
    ("megaglest-data", r"/units/(elephant|behemoth|dragon|evil_dragon|thunderbird|snake_basket)/", "animal_wild"),
    ("megaglest-data", r"/units/beehive/", "insect"),
    ("megaglest-data", r"_die\d*\.", "human_vocal"),
    ("megaglest-data", r"archer.*attack|tower_attack", "bow_arrow"),
    ("megaglest-data", r"(archmage|battlemage|initiate|summoner|shaman|genie|magician|fakir|daemon|"
                       r"ghost_armor|princess|golem).*(attack|hit|summon|heal)", "magic_scifi"),
    ("megaglest-data", r"(catapult|battle_machine|airship|ornithopter|orni_|carpet).*(attack|walk|fly|move)",
     "vehicle"),
    ("megaglest-data", r"_attack\d*\.", "melee_weapon"),
    ("megaglest-data", r"_walk\d*\.", "footsteps_movement"),
    ("megaglest-data", r"_(build|mine|harvest\w*|work\w*|prod)\d*\.", "tool_work"),
    ("flightgear-data-base", r"wasp|coughing|R-1535|engstart|p51d|rattleroll|squeal", "vehicle"),
    ("flightgear-data-base", r"/Sounds/(intro|radionoise)|/mk-viii/|/tcas/|altitude|checklist", None),
    ("warzone2100-data", r"/(taunt\d|nexus)/.*(haha|laugh)", "human_vocal"),
    ("warzone2100-data", r"/sfx/misc/(help|silence)|radclik|/interfce/gmeshtdn|/audio/(?!sfx|multi)", None),
    ("warzone2100-data", r"/sfx/misc/scream", "human_vocal"),
    ("warzone2100-data", r"/sfx/weapons/(splash)", "water"),
    ("warzone2100-data", r"/sfx/weapons/(build|bldloop|bldstart|weld)", "tool_work"),
    ("warzone2100-data", r"/sfx/weapons/", "gunfire"),
    ("warzone2100-data", r"/sfx/vehicle/", "vehicle"),
    ("warzone2100-data", r"/sfx/building/(oilpump|powerhum|powerspk|ecmtower)", "machine"),
    ("warzone2100-data", r"/sfx/explons/(squish)", "impact"),
    ("warzone2100-data", r"/sfx/explons/(richet)", "gunfire"),
    ("warzone2100-data", r"/sfx/explons/", "explosion"),
    ("warzone2100-data", r"/multi/(beacon|uplink)", "ui_beep"),
    ("warzone2100-data", r"/multi/", "gunfire"),
    ("nexuiz-data", r"/player/[^/]+/player/(death|drown|fall|falling|gasp|jump|pain)", "human_vocal"),
    ("nexuiz-data", r"/player/[^/]+/|tuba_note|/misc/talk|/kh/|/ctf/|/domination/|/announcer/|/tutorial/", None),
    ("openarena-data", r"/player/sarge/(death|drown|fall|falling|gasp|jump|pain)", "human_vocal"),
    ("openarena-data", r"/player/sarge/|youwin|silence|/voices/", None),
    ("openarena-data", r"/weapons/(machinegun|vulcan|shotgun|railgun|plasma|bfg|lightning|nailgun)/.*(f\d|fire)",
     "gunfire"),
    ("trigger-rally-data", r"sounds/(engine|gear)", "vehicle"),
    ("trigger-rally-data", r"sounds/bang", "explosion"),
    ("trigger-rally-data", r"sounds/gravel", "footsteps_movement"),
    ("trigger-rally-data", r"/codriver/", None),
    ("redeclipse-data", r"/sounds/voice/(argh|haha|boom)", "human_vocal"),
    ("redeclipse-data", r"/sounds/(voice|announcer|music)/|/sounds/theme|/maps/", None),
    ("redeclipse-data", r"/weapons/(pistol|smg|shotgun|rifle|zapper|plasma|flamer)/(primary|secondary)", "gunfire"),
    ("redeclipse-data", r"/weapons/(rocket|grenade)/primary", "gunfire"),
    ("redeclipse-data", r"/weapons/sword/", "melee_weapon"),
    ("redeclipse-data", r"/weapons/.*/(reload|switch|notify|power|transit)", "gun_mechanics"),
    ("lincity-ng-data", r"/sounds/(Residential|Shanty|School|University|Health|Commune|Market|SportsCroud|"
                        r"Monument\d|FireStation)", "crowd_city"),
    ("lincity-ng-data", r"/sounds/(Trafic|DirtTrack|RailTrain|RocketTakeoff)", "vehicle"),
    ("lincity-ng-data", r"/sounds/(Farm|OrganicFarm)", "animal_domestic"),
    ("lincity-ng-data", r"/sounds/(Parkland|Green|Tip|Water)", "ambience"),
    ("lincity-ng-data", r"/sounds/(Blacksmith|Pottery|Build|Raze|Recycle|Mill|CoalMine|OreMine|Windo|WindMill|"
                        r"MonumentConstruction)", "tool_work"),
    ("lincity-ng-data", r"/sounds/(Industry|Power|Substation|Harbor)", "machine"),
    ("lincity-ng-data", r"/music/", None),
    ("freedroidrpg-data", r"bot_sounds/(death|First_Contact|Start_Attack)", "machine"),
    ("freedroidrpg-data", r"Influencer_Scream", "human_vocal"),
    ("freedroidrpg-data", r"/bullets/Sword", "melee_weapon"),
    ("freedroidrpg-data", r"/bullets/", "gunfire"),
    ("freedroidrpg-data", r"Menu|Mission_Status|ThouArt|Takeover_Game", "ui_beep"),
    ("scorched3d-data", r"/movement/", "vehicle"),
    ("scorched3d-data", r"/shield/", "magic_scifi"),
    ("scorched3d-data", r"/misc/(play|text|f|t)\.|/music/", None),
    ("scorched3d-data", r"/shoot/", "gunfire"),
    ("supertuxkart-data", r"WilhelmScream", "human_vocal"),
    ("supertuxkart-data", r"/[^/]*(engine|car_|kart|skid|nitro|airplane|spaceship|steamLocomotive)[^/]*$", "vehicle"),
    ("supertux-data", r"/sounds/(jump|bigjump|hop|flip|flop)\.", "cartoon"),
    ("supertux-data", r"/sounds/(grunts|hurt|kill|yeti_gna)", "human_vocal"),
    ("frozen-bubble-data", r"/snd/(applause)", "crowd_city"),
    ("frozen-bubble-data", r"/snd/(snore)", "human_vocal"),
    ("frozen-bubble-data", r"/snd/(typewriter|chatted)", "household"),
    ("frozen-bubble-data", r"zik", None),
    ("frozen-bubble-data", r"/snd/", "ui_beep"),
    ("tuxpaint-data", r"/sounds/(giggle)", "human_vocal"),
    ("tuxpaint-data", r"/sounds/(paint|eraser|fill|line_|thick|thin|stamp|flip|mirror|grow|shrink|scroll|"
                      r"italic|keyclick|return|save|prompt|click)", "ui_beep"),
    ("oxygen-sounds", r".", "ui_beep"),
    ("bzflag-data", r"(flag_|message_|hunt|killteam|spree|teamgrab|thief|lock)", "ui_beep"),
    ("pokerth-data", r".", "household"),                           # cards, chips, a bell
    ("torcs-data", r"/cars/|engine|turbo|gear_change|axle|road-ride", "vehicle"),
    ("torcs-data", r"bottom_crash|out_of_road", "impact"),
    ("lugaru-data", r"Rabbit|Snarl|Wolf", "animal_wild"),
    ("lugaru-data", r"Hawk", "bird"),
    ("lugaru-data", r"Staff|FleshStab|Knife|Sword", "melee_weapon"),
    ("lugaru-data", r"BushRustle|Broken", "break_crash"),
    ("tuxfootball", r"whistle", "alarm_bell_horn"),
    ("enigma-data", r"ballcollision|st-(metal|stone|move)|it-trigger", "impact"),
    ("freecol", r"artillery|sunk", "explosion"),
    ("freecol", r"dragoon", "gunfire"),
    ("openclonk-data", r"/Skin\.ocg/.*/(Hurt|Death|Die|Munch|Eat|Breath|Cough|Snore|Laugh|Fall|Grunt|Scream|"
                       r"Ugh|Oof|Ah|Hey)", "human_vocal"),
    ("openclonk-data", r"/Skin\.ocg/", None),                 # spoken lines of the player characters
    ("openclonk-data", r"/Animals\.ocg/(Mooq|Puka|Wipf|Monster|Chippie|Bat|Zap|Fish|LavaCore|Shark|Squid|"
                       r"Mosquito|Firefly)", "animal_wild"),
    ("openclonk-data", r"/Animals\.ocg/(Bird|Chicken)", "bird"),
    ("openclonk-data", r"/Animals\.ocg/(Butterfly|Bee|Insect)", "insect"),
    ("openclonk-data", r"/Hits\.ocg/Materials\.ocg/Glass", "break_crash"),
    ("openclonk-data", r"/Hits\.ocg/", "impact"),
    ("openclonk-data", r"/Liquids\.ocg/", "water"),
    ("openclonk-data", r"/Fire\.ocg/(Blast|Explo)", "explosion"),
    ("openclonk-data", r"/Fire\.ocg/", "fire"),
    ("openclonk-data", r"/Clonk\.ocg/Movement", "footsteps_movement"),
    ("openclonk-data", r"/Clonk\.ocg/Action\.ocg/Dig", "tool_work"),
    ("openclonk-data", r"/Structures\.ocg/", "machine"),
    ("openclonk-data", r"/UI\.ocg/", "ui_beep"),
    # berusky2: Czech names
    ("berusky2-data", r"/music/|/voc|comix|relax|emotion|freemind|cool|trip|space|piano|break\.", None),
    ("berusky2-data", r"(?i)/(ptak|racek)", "bird"),
    ("berusky2-data", r"(?i)/(krysa|drak)", "animal_wild"),
    ("berusky2-data", r"(?i)/(voda|kap|bubl|zblunk|vynor|bortici)", "water"),
    ("berusky2-data", r"(?i)/(vitr|hrom|blesk)", "weather"),
    ("berusky2-data", r"(?i)/(auto|parnik|vytah)", "vehicle"),
    ("berusky2-data", r"(?i)/(dvere|odemceni|tlacitko|exit)", "door_mechanism"),
    ("berusky2-data", r"(?i)/(krumpac|hrebik|prc|mesto)", "tool_work"),
    ("berusky2-data", r"(?i)/(pad_|padklice|bedna|rozpad|balance|magnet)", "impact"),
    ("berusky2-data", r"(?i)/(telep|telo)", "magic_scifi"),
    # Warmux (worms-like): grunts, weapons, objects
    ("warmux-data", r"/music/|/(ok|victory|newcomer|sherif|start_turn|end_turn|countdown|clic)\.", None),
    ("warmux-data", r"injured|death|suicide|friendly_fire|happy|woodlux|circux|diabolicux|exoticux", "human_vocal"),
    ("warmux-data", r"/(fire|ricoche|m16)|weapon_", "gunfire"),
    ("warmux-data", r"embers|dynamite_fuze", "fire"),
    ("warmux-data", r"sink", "water"),
    ("warmux-data", r"airhammer|construction", "tool_work"),
    ("warmux-data", r"grapple", "door_mechanism"),
    ("warmux-data", r"jump|supertux_flying|riot_flying", "cartoon"),
    ("warmux-data", r"box_|slap|baseball|homerun|load", "impact"),
    ("warmux-data", r"polecat|frog", "animal_wild"),
    # Naev and Endless Sky: spaceship weapons and engines (music and announcer left out)
    ("naev-data", r"/music/", None),
    ("naev-data", r"afterburner|engine|liftoff|launch|landing|hyperspace|jump", "vehicle"),
    ("naev-data", r"exp|explo|grenade\.|nuke", "explosion"),
    ("naev-data", r"beam|ion|neutron|ripper|seeker|mass|cannon|laser|grenadefire|railgun|missile|torpedo|bolt|"
                  r"flak|turret|gun", "gunfire"),
    ("naev-data", r"compression|attachment|detachment|outfit|nav|hail|target", "ui_beep"),
    ("endless-sky-data", r"afterburner|takeoff|landing|jump|engine|thrust", "vehicle"),
    ("endless-sky-data", r"explo|atomic|bombardment|finisher|nuke|typhoon|thunderhead", "explosion"),
    ("endless-sky-data", r"/sounds/", "gunfire"),
    # Mirror Magic: German names
    ("mirrormagic-data", r"halloffame|/exit|njam|infotron|base\.", None),
    ("mirrormagic-data", r"lachen|autsch|quiek|schlurf", "human_vocal"),
    ("mirrormagic-data", r"kabumm|booom|zonk", "explosion"),
    ("mirrormagic-data", r"roaaar|knurk|bug\.|amoebe|slurp", "animal_wild"),
    ("mirrormagic-data", r"oeffnen|klapper|klopf|knack", "door_mechanism"),
    ("mirrormagic-data", r"kling|bong|deng|warnton|miep|pling", "alarm_bell_horn"),
    ("mirrormagic-data", r"holz|klumpf|pusch|pong|kink|buing", "impact"),
    ("mirrormagic-data", r"zisch|sirr|hui|roehr|blurb|fuel|quirk", "whoosh"),
    # Wordwarvi, Amphetamine, netpanzer, Micropolis, Simutrans, Heroes, Maze of Galious
    ("wordwarvi-sound", r"metalbang|stonebang|bodyslam|smack|quarter", "impact"),
    ("wordwarvi-sound", r"scream|ooooof|hohoho|woohoo|yay|help_", "human_vocal"),
    ("wordwarvi-sound", r"explosion|volcano", "explosion"),
    ("wordwarvi-sound", r"jetwash", "vehicle"),
    ("wordwarvi-sound", r"cardoor", "door_mechanism"),
    ("wordwarvi-sound", r"tesla|zzzt|radar", "machine"),
    ("wordwarvi-sound", r"UseTheSource|destiny|dtox|highscore|lucky|abducted", None),
    ("amphetamine-data", r"(bomb|guided)[hl]\.", "explosion"),
    ("amphetamine-data", r"(sword|staff|hands|scie)[hl]\.", "melee_weapon"),
    ("amphetamine-data", r"bow[hl]\.", "bow_arrow"),
    ("amphetamine-data", r"(sorcery|phiol|aimed)[hl]\.", "magic_scifi"),
    ("amphetamine-data", r"(troll|warg\d|nazgul|otyg|bork)[hl]\.", "animal_wild"),
    ("amphetamine-data", r"dive|plat|stonedam", "impact"),
    ("netpanzer-data", r"selected|affirm|yessir|movout|tarconf", None),
    ("netpanzer-data", r"hevidle|hevmov|hevstart|tankidle|unitsound", "vehicle"),
    ("netpanzer-data", r"expl", "explosion"),
    ("netpanzer-data", r"battle_mg|attack", "gunfire"),
    ("micropolis-data", r"/(a|e|o|com|ind|res|query|zone|wire|road|park|chalk|bop|sorry)\.", None),
    ("micropolis-data", r"honkhonk", "alarm_bell_horn"),
    ("micropolis-data", r"police", "alarm_bell_horn"),
    ("micropolis-data", r"heavytraffic|rail|airport|seaport|ignition", "vehicle"),
    ("micropolis-data", r"bulldozer|coal", "tool_work"),
    ("micropolis-data", r"quack", "bird"),
    ("micropolis-data", r"monster", "animal_wild"),
    ("micropolis-data", r"aaah|oop|uhuh", "human_vocal"),
    ("micropolis-data", r"stadium", "crowd_city"),
    ("simutrans-pak64", r"buzzsaw|jackhammer|tree-cutting|gavel", "tool_work"),
    ("simutrans-pak64", r"diesel|bus|planelow|dock", "vehicle"),
    ("simutrans-pak64", r"seagulls", "bird"),
    ("simutrans-pak64", r"crossing", "alarm_bell_horn"),
    ("simutrans-pak64", r"arctic|desert|tropic", "ambience"),
    ("heroes-sound-effects", r"claxon", "alarm_bell_horn"),
    ("heroes-sound-effects", r"foule", "crowd_city"),
    ("heroes-sound-effects", r"mort_b|ho_yeh|/oh\.|/no\.", "human_vocal"),
    ("heroes-sound-effects", r"ecrase", "impact"),
    ("mazeofgalious-data", r"demon|gorilla|lizardtongue|colormonster|blob|rockman", "animal_wild"),
    ("mazeofgalious-data", r"enterwater", "water"),
    ("mazeofgalious-data", r"firearrow|knightarrow", "bow_arrow"),
    ("mazeofgalious-data", r"firefire|flamebullet|fbreath", "fire"),
    ("mazeofgalious-data", r"bullet", "gunfire"),
    ("mazeofgalious-data", r"stones|rotatedoor|wdoor", "door_mechanism"),
    ("mazeofgalious-data", r"/ah\d?\.", "human_vocal"),
    ("overgod-data", r"/beat/", None),
    ("overgod-data", r"bigbang|burst|minebang|blat", "explosion"),
    ("overgod-data", r"zap|seeker|phase|warble|twing|sharp", "gunfire"),
    ("freetennis-common", r"(Ahh|hff|fatica|hm|contrazione)", "human_vocal"),
    ("freetennis-common", r"(colpo|palla|rete|battuta|muro|fh|spin|taglio|risposta)", "impact"),
    ("freetennis-common", r".", None),
    ("pekka-kana-2-data", r"bunny|chick", "animal_wild"),
    ("pekka-kana-2-data", r"beehive", "insect"),
    ("pekka-kana-2-data", r"eggcrack|boxcrack", "break_crash"),
    ("pekka-kana-2-data", r"tankshot", "gunfire"),
    ("trackballs-data", r"laugh", "human_vocal"),
    ("trackballs-data", r"sandcrash|roll_sound", "impact"),
    ("freegish-data", r"break", "break_crash"),
    ("freegish-data", r"hit|attack|necksnap|friction|tarball", "impact"),
]

#: Left out after the package rules: speech, voice acting, music and narration.
SPEECH_OR_MUSIC = re.compile(
    r"(^|/)(music|musics|speech|voices?|announcer|tutorial|codriver|coms|taunts?|memressp|titles)(/|$)|"
    r"music|theme|intro|credits|jingle|checklist|radiomessage|sara_airport_pa|nolok_speech|excuseme|"
    r"areyousure|youcannot|tuxok|goodidea|letsgo|ohno|yipee|tux_(hello|murp|rap|upset)|penny_runt|"
    r"lenautile|gnu_flute|harp\.", re.I)

#: The keyword taxonomy, for every package: (regex on the words of the file name and its two
#: folders, category). Words are lower case, split at camelCase, '_', '-', '.' and digits.
TAXONOMY: list[tuple[str, str]] = [
    (r" (wilhelm|scream\w*|death|die|dying|pain|hurt|ouch|groan|moan|grunts?|gasp|drown|cough\w*|sneeze|"
     r"laugh\w*|giggle|snore|burp|breath\w*|yell|argh|ooff|ow|falling|kiss|gulp|chew|bite|munch|gurp|wail\w*|"
     r"ugg|ugh|heh|injured|belch|puke|warcry|ahh|aaah) ", "human_vocal"),
    (r" (applause|cheer\w*|crowd|audience|croud) ", "crowd_city"),
    (r" (cows?|moo|pigs?|sheep|goats?|chickens?|hen|horses?|canter|gallop|neigh|dogs?|bark\w*|cats?|meow|"
     r"donkey|bull|lamb|sow|tusker) ", "animal_domestic"),
    (r" (birds?|birdy|birdchirp|chirp\w*|tweet|owl|crow|raven|eagle|gulls?|seagull|parrot|ducks?|dove|"
     r"gryphon|rooster|cuckoo|pigeon|hawk|exotic) ", "bird"),
    (r" (bees?|beesting|insects?|mosquito|crickets?|cicadas?|cycadas|flies|hornet|frogs?|croak|swatter|"
     r"nightcrickets) ", "insect"),
    (r" (wolf|wolves|bears?|lions?|elephant|monkey|bats?|snakes?|hiss\w*|growl\w*|roar\w*|dragon\w*|drake|"
     r"dinosaur|ape|tiger|yeti|ghoul|rats?|howl\w*|ogre|troll|orc|skeleton|zombie|wose|pincers|tail|"
     r"spider|rabbit) ", "animal_wild"),
    (r" (explo\w*|boom|bombs?|blast\w*|detonat\w*|nuke|nuclear\w*|kaboom|det|firework\w*|firecracker|"
     r"napalm|bang|exp|lrgexpl|smlexpl|atnkexpl|mpodexpl|nxsexpld|lsrexpl|hagexp|meteor|quake|shockwave|"
     r"wstbexpl|implode|rocklx\w*|plasmx\w*|rexeplo) ", "explosion"),
    (r" (reload\w*|casings?|shell|brass|weapon switch|change|noammo|no ammo|cock\w*|magazine|"
     r"weaponpickup|w pkup|am pkup|empty) ", "gun_mechanics"),
    (r" (guns?|gunshot|gatling|shotgun\w*|sshot\w*|rifle|pistol|machinegun|machgf\w*|minigun|vulcan\w*|"
     r"wvulfire|uzi|smg|cannon|lrgcan|medcan|smlcan|rapdcan|hivelcan|mortar|howitzer|hwtzflgt|blaster|"
     r"laser\w*|lasgun|bemlsr|rotlsr|plslsr|hevlsr|plasma|railg\w*|phaser|shoot\w*|shot\w*|fire|launch\w*|"
     r"missiles?|rockets?|rocklf\w*|nailgun|wnalfire|sinegun|landgun|drillgun|flak|tracer|ricochet|ric|"
     r"richet|buletby|mgbar|mgheavy|mgtower|asltmg|sniper\w*|bfg|crylink|nexfire|minstanexfire|hagar|"
     r"zapper|gaussgun|flare|tir rak|tir monstre|hyprbf\w*|grenlf\w*|railgf\w*|lg|bullets?|"
     r"exterminator|pulse) ", "gunfire"),
    (r" (bow|bows|crossbow|arrows?|dart|sling|puny) ", "bow_arrow"),
    (r" (swords?|axe|axes|hatchet|dagger|club|flail|mace|spears?|knife|blades?|baseballbat|fist|fstatck|"
     r"punch\w*|claws|melee|staff|scythe|whip|swing then hit|swing then nohit|stab|slash) ", "melee_weapon"),
    (r" (footsteps?|steps?|walk\w*|run|running|jog|boot|land|landing|slide|skid|climb|concstep|swimstep|"
     r"jump\w*|gravel|foot|impulse) ", "footsteps_movement"),
    (r" (engines?|motors?|cars?|carhorn|kart|trucks?|tanks?|tankmove|tread|helicopter\w*|heli|rotor\w*|"
     r"apache|jets?|jetengine|turbine\w*|turbojet|turboprop|prop|propeller|planes?|airplane|aircraft|cessna|"
     r"train|locomotive|railway|ship|ships|boats?|hover\w*|hovmove|hovstart|hovstop|vtol\w*|airship|"
     r"ornithopter|spaceship|traffic|exhaust|starter|cranking|tires|tyres?|gear|idle|revup|accel|flyby|"
     r"distant cars|policecar|firetruck|tflight|thover|tland|tstart|jetpack\w*|parachute|rcplane|"
     r"con move|cyber move|hvcybmov|blade vortex|flaps|rudder) ", "vehicle"),
    (r" (siren|alarm|klaxon|horns?|bells?|savebell|ring|ringing|phone|buzzer|gong|warning|overspeed|stall|"
     r"flarm|vario|beacon|whistle|refwhistle\w*|typewriterbell) ", "alarm_bell_horn"),
    (r" (doors?|gates?|lock|locked|unlock|latch|hatch|lever|switch\w*|butn|chest|drawer|elevator|"
     r"leave elevator|plat|plats|dr|pt|turnkey|keys|compartment|primer|window|trim|control lock) ",
     "door_mechanism"),
    (r" (glass|shatter|break|broken|breaks?|crack\w*|crunch|crumble|debris|collapse|cave in|bldfall|"
     r"building fall|icecrash|destroy\w*|raze|smash|metbrk|woodbrk|petrified|rdetruit|rbrique|"
     r"rbricote) ", "break_crash"),
    (r" (water\w*|splash\w*|splosh|splat|drip|droplets?|drops|bubbles?|bubble|gurgle|gloop|pour|river|creek|"
     r"waterfall\w*|waves?|ocean\w*|sea|swim\w*|underwater|watr (in|out|un)|outwater|gulp|plop\w*|"
     r"blubber|slime|goo|mud|glob|ink|inh|swamped|oceanwaves) ", "water"),
    (r" (rain|thunder|lightning\w*|storm\w*|wind|windy|blowwind|dizzywind|alienwind|hollowwind|wastewind|"
     r"demonwind|windhowling|windoutside|hail|weather|painwind) ", "weather"),
    (r" (flames?|flamer|burn\w*|torch|campfire|sizzle|crackle|lava\w*|fireball\w*|molotov|flamethrower|"
     r"flmthrow|plasflm|blowtorch|fuse|fry|singe|extinguish|firesoft|fire (start|end|large|small)|"
     r"freroar|bleed|hot) ", "fire"),
    (r" (machines?|machinery\w*|machinevat|pumps?|generator\w*|factory\w*|mill|windmill|drill|saw|"
     r"chainsaw|hydraulic|servo|pneumatic|steam\w*|fan|hum|drone|transformer|electric\w*|powerline|"
     r"power|substation|avionics|gyro|industry|conveyor|robots?|mech|whine|neonhum|monitor|sparks?|"
     r"battery|clock|ticking|tick|tock|minetick|oilpump|powerhum|powerspk|generator|lights|curnt|"
     r"tim machine|tim pump|tim drone|scroll|cooling) ", "machine"),
    (r" (hammer\w*|anvil|chop\w*|dig|digger|mining|mine|pickhammer|pickaxe|build\w*|construct\w*|weld|"
     r"blacksmith|smith|repair\w*|harvest\w*|lumber\w*|wood|woodcut\w*|carpent\w*|sawing|tools?|"
     r"pottery) ", "tool_work"),
    (r" (teleport\w*|telein|teleout|warp|portal\w*|zap|bzap|bzzt|pzap|energy|forcefield|shields?|heal\w*|"
     r"summon\w*|magic|spell|invisib\w*|invulner\w*|quaddamage|regen\w*|haste|flight|respawn|spawn|"
     r"powerup|power up|freeze|ice beam|beamup|radiation|emp|shock\w*|electro\w*|phantom|ghost|"
     r"willowisp|willocatch|lowgravity|gravity|hyper\w*|ufo|cloak|entangle|poison|slowed|net|"
     r"transfo|gadget|appear|dark|forcefield|wakawaka|riftcollapse|deadlock|capsule) ", "magic_scifi"),
    (r" (coins?|pickup|pkup|collect\w*|grab\w*|bonus|extralife|extra life|life add|lifeup|life plus|"
     r"health|armor|ammo|items?|gold|goldshower|score|upgrade|grow|gem|crystal\w*|star|prize|win|won|"
     r"lose|lost|life lose|life moins|tada|fanfare|goal|goody\w*|money|rmoney|gainlife|looselife|extraball|"
     r"joker|speedup|speeddown|timeadd|excellent|verygood|bought|sold|repaired) ", "game_reward"),
    (r" (whoosh|swoosh|swish|woosh|whizz|whiz|flap\w*|wings?|swing|whirl|nexwhoosh|fly|throw\w*|toss|"
     r"miss|lasfly|rockfly|missile fly|rocket fly|electro fly|fireball fly|swoop) ", "whoosh"),
    (r" (hit|hits|impact\w*|thud|bump|bounce\w*|rebound|clang|clank|clack|knock|slam|kick|stomp|squish|"
     r"squash|gibimp|gib|gibsplt|thwack|tink|chink|ting|drop\w*|fall|crash|collide|collision|thump|plunk|"
     r"stick|strike|bowling\w*|ball|brick|wall|metal|stone|bottom crash|attach|reflect|nudge|"
     r"rraquette|reject|damage\w*) ", "impact"),
    (r" (paper|book|bottle|potion|cloth|zipper|plastic|toy|squeak|pop|cork|typewriter|keyboard|camera\w*|"
     r"shutter\w*|cards?|chips?|cup|dishes|kettle|drink|sip|inflate|balloon|bubblegum|sign|read sign|"
     r"chatted|cash|purse|rubberduck|cake|egg|armour put|eraser|paint|fill|stamp|fruit) ", "household"),
    (r" (boing|spring|trampoline|cartoon|slide whistle|kazoo|plunger|flip|boink|hop|bigjump|suck|"
     r"tree suck|fizz|pshit|squeak) ", "cartoon"),
    (r" (beep|bleep|blip|click|clik|menu|select|ui|interface|buttons?|hover|notify|notification|prompt|"
     r"chime|ding|ping|timer|chat|message|alert|confirm|cancel|denied|error|pause|skip|slider|checkbox|"
     r"expand|contract|join|leave|receive|arrive|static|radio\w*|morse|typehit|increasevalue|"
     r"decreasevalue|hithi|hitlo|feedback|console\w*|computer|lockon|hurry|newroot\w*|malus|launch|"
     r"destroy group|edit|disable|chaos|rtecno|rgadget|rindes|rappar|raspire|ratom) ", "ui_beep"),
    (r" (ambien\w*|ambience|amb|atmos\w*|forest|jungle|night\w*|morning|day|city|citysounds|cave\w*|"
     r"drone|rumble\w*|vapour|hollow|wardrums|distant|cf distant|outdoor\w*|indoor|room|x \w+drone|"
     r"moon|fountain|background|generic|settlers|colony) ", "ambience"),
]


@dataclass
class Source:
    package: str
    original: str                       # path inside the package ('archive!entry' inside an archive)
    read: Callable[[], bytes]


def category_of(package: str, original: str) -> str | None:
    """The first matching rule's category; None when a rule leaves the file out or none matches."""
    path = original.replace("!", "/")
    for pkg, pattern, category in PACKAGE_RULES:
        if pkg == package and re.search(pattern, path, re.I):
            return category
    if SPEECH_OR_MUSIC.search(path):
        return None
    text = words(path)
    return next((category for pattern, category in TAXONOMY if re.search(pattern, text)), None)


def words(path: str) -> str:
    """' door wood open ' from '.../Door/woodOpen_2.ogg': the file stem and two folders, lower case."""
    parts = path.split("/")[-3:]
    parts[-1] = parts[-1].rsplit(".", 1)[0]
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", " ".join(parts)).lower()
    return " " + " ".join(re.sub(r"[^a-z]+", " ", text).split()) + " "


def package_sources(package: str, root: Path) -> Iterator[Source]:
    """Every audio file of an unpacked package, including those inside game archives."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if AUDIO.search(path.name):
            yield Source(package, rel, path.read_bytes)
        elif ARCHIVES.search(path.name) and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                for name in sorted(n for n in z.namelist() if AUDIO.search(n)):
                    yield Source(package, f"{rel}!{name}", lambda z_path=path, n=name: _read_entry(z_path, n))
        elif C4GROUPS.match(path.name):
            for name, data in sorted(c4group_entries(path.read_bytes())):
                if AUDIO.search(name):
                    yield Source(package, f"{rel}!{name}", lambda d=data: d)


def _read_entry(archive: Path, name: str) -> bytes:
    with zipfile.ZipFile(archive) as z:
        return z.read(name)


def c4group_entries(blob: bytes) -> list[tuple[str, bytes]]:
    """(path, bytes) of every file in an OpenClonk C4Group: a gzip stream whose magic number
    is 1e 8c instead of 1f 8b, holding a header (204 bytes, scrambled), entry records (316
    bytes each: name, packed flag, child-group flag, size, offset) and the data; a child group
    is a nested group inside the data. Sizes and offsets are checked against the buffer."""
    if blob[:2] != b"\x1e\x8c":
        raise ValueError("not a C4Group file")
    raw = gzip.decompress(b"\x1f\x8b" + blob[2:])
    out: list[tuple[str, bytes]] = []

    def walk(base: int, prefix: str, depth: int) -> None:
        header = _c4_unscramble(raw[base:base + 204])
        if not header.startswith(b"RedWolf Design GrpFolder") or depth > 16:
            raise ValueError(f"damaged C4Group at byte {base}")
        n = struct.unpack_from("<i", header, 36)[0]
        data0 = base + 204 + 316 * n
        if not 0 <= n <= 100_000 or data0 > len(raw):
            raise ValueError(f"damaged C4Group at byte {base}")
        for k in range(n):
            entry = raw[base + 204 + 316 * k: base + 204 + 316 * (k + 1)]
            name = entry[:260].split(b"\0")[0].decode("latin-1")
            _, child, size, _, offset = struct.unpack_from("<iiiii", entry, 260)
            if not (0 <= offset and 0 <= size and data0 + offset + size <= len(raw)):
                raise ValueError(f"damaged C4Group entry {prefix}{name}")
            if child:
                walk(data0 + offset, f"{prefix}{name}/", depth + 1)
            else:
                out.append((prefix + name, raw[data0 + offset: data0 + offset + size]))

    walk(0, "", 0)
    return out


def _c4_unscramble(buf: bytes) -> bytes:
    b = bytearray(buf)
    for i in range(0, len(b) - 2, 3):
        b[i], b[i + 2] = b[i + 2], b[i]
    return bytes(x ^ 237 for x in b)


def package_version(cache: Path, package: str) -> str:
    debs = sorted(cache.glob(f"{package}_*.deb"))
    return debs[-1].name.split("_")[1].replace("%3a", ":") if debs else ""


def library_index(library: Path | None) -> DuplicateIndex:
    """Fingerprints of every clip of the library the corpus must not overlap, converted the way
    corpus clips are (so the same recording compares equal)."""
    index = DuplicateIndex()
    if library is None:
        return index
    for path in sorted(p for p in library.rglob("*") if AUDIO.search(p.name)):
        try:
            pieces = convert(path.read_bytes())
        except Exception:          # unreadable library files cannot be duplicated anyway
            continue
        for piece in pieces:
            index.add(piece, f"library:{path.relative_to(library).as_posix()}")
    return index


def build(cache: Path, out: Path, packages=PACKAGES, exclude_library: Path | None = None,
          max_per_label: int = 6, progress: bool = True) -> dict:
    """Write ``out/<category>/<package>__<label>_NN.flac`` and ``out/ATTRIBUTION.tsv``; return counts."""
    (cache / "debs").mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*/*.flac"):
        old.unlink()
    library = library_index(exclude_library)
    corpus = DuplicateIndex()
    per_label: Counter = Counter()
    rows, left_out, left_rows = [], Counter(), []

    def leave_out(src: Source, reason: str, match: str = "") -> None:
        left_out[reason] += 1
        left_rows.append({"package": src.package, "original_path": src.original, "reason": reason, "match": match})

    recordings = 0
    for package in packages:
        root = unpack(package, cache / "debs")
        copyright_file = CopyrightFile(root / "usr/share/doc" / package / "copyright")
        version = package_version(cache / "debs", package)
        n_before = len(rows)
        for src in package_sources(package, root):
            category = category_of(package, src.original)
            if category is None:
                leave_out(src, "speech, music or uncategorised")
                continue
            # variants of one sound share a label; the same name in another folder (another voice) does not
            parts = src.original.replace("!", "/").split("/")
            key = (package, category, label_of(f"{parts[-2] if len(parts) > 1 else ''}_{parts[-1]}"))
            if per_label[key] >= max_per_label:
                leave_out(src, "variants over the per-label cap")
                continue
            try:
                pieces = convert(src.read())
            except Exception as exc:      # a damaged file in a package: report and go on
                leave_out(src, "unreadable", f"{exc.__class__.__name__}: {exc}")
                continue
            kept_any = False
            for seg in pieces:
                match = library.find(seg)
                if match:
                    leave_out(src, "duplicates of the demo library", match)
                    continue
                match = corpus.find(seg)
                if match:
                    leave_out(src, "duplicates inside the corpus", match)
                    continue
                if per_label[key] >= max_per_label:
                    break
                per_label[key] += 1
                clip = f"{category}/{package}__{key[2]}_{per_label[key]:02d}.flac"
                (out / category).mkdir(exist_ok=True)
                sf.write(out / clip, seg, RATE, format="FLAC", subtype="PCM_16")
                corpus.add(seg, clip)
                lic, holders = copyright_file.lookup(src.original)
                rows.append({"path": clip, "category": category, "label": key[2], "package": package,
                             "package_version": version, "original_path": src.original, "license": lic,
                             "copyright": holders[:300], "duration_s": f"{len(seg) / RATE:.2f}"})
                kept_any = True
            recordings += kept_any
        if progress:
            print(f"{package:<24} {len(rows) - n_before:5d} clips", flush=True)
    with open(out / "ATTRIBUTION.tsv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["path"], delimiter="\t")
        w.writeheader()
        w.writerows(sorted(rows, key=lambda r: r["path"]))
    with open(out / "LEFT_OUT.tsv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["package", "original_path", "reason", "match"], delimiter="\t")
        w.writeheader()
        w.writerows(left_rows)
    counts = dict(sorted(Counter(r["category"] for r in rows).items()))
    return {"clips": len(rows), "recordings": recordings, "categories": counts, "left_out": dict(left_out),
            "hours": round(sum(float(r["duration_s"]) for r in rows) / 3600, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "qvi" / "train-corpus",
                    help="where packages are downloaded and unpacked (debs/) and the corpus written (corpus/)")
    ap.add_argument("--out", type=Path, help="corpus folder (default: CACHE/corpus)")
    ap.add_argument("--packages", nargs="+", default=list(PACKAGES), metavar="PKG")
    ap.add_argument("--exclude-library", type=Path, default=REPO / "assets" / "library",
                    help="leave out exact and near duplicates of this library (default: the demo library)")
    ap.add_argument("--max-per-label", type=int, default=6, help="variants kept per label and package")
    a = ap.parse_args(argv)
    out = a.out or a.cache / "corpus"
    summary = build(a.cache.resolve(), out, a.packages, a.exclude_library, a.max_per_label)
    print(f"{summary['clips']} clips from {summary['recordings']} recordings in {len(summary['categories'])} "
          f"categories, {summary['hours']} h, written to {out}")
    for cat, n in summary["categories"].items():
        print(f"  {cat:<20} {n}")
    print("left out: " + ", ".join(f"{k} {v}" for k, v in summary["left_out"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
